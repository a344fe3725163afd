"""Report figures as PNG bytes, drawn on ``matplotlib.figure.Figure`` with the Agg canvas
(never pyplot: no global figure state, no GUI backend, safe in servers and threads)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from frvs.evaluation.models import IdentificationResult, VerificationResult

_SIZE = (6.0, 4.2)
_DPI = 100
_DET_TICKS = (0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly: no backend selection anywhere
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def roc_png(results: Sequence[VerificationResult]) -> bytes:
    """TMR against FMR (log x axis), one line per pack, the operating point marked.

    An FMR of 0 is drawn at half an impostor count, where a log axis can show it."""
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    for r in results:
        floor = 0.5 / r.scores.impostor.size  # FMR 0 cannot sit on a log axis
        (line,) = ax.step(np.maximum(r.roc.fmr, floor), r.roc.tmr, where="post",
                          label=r.run.pack)
        ax.plot(max(r.decisions.fmr, floor), 1 - r.decisions.fnmr, "o", color=line.get_color())
    ax.set_xscale("log")
    ax.set(xlabel="false match rate (FMR)", ylabel="true match rate (1 - FNMR)",
           title="ROC", ylim=(0, 1.02))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    return _png(fig)


def _probit(rates: np.ndarray, n: int) -> np.ndarray:
    clipped = np.clip(rates, 0.5 / n, 1 - 0.5 / n)
    inv = NormalDist().inv_cdf
    return np.array([inv(float(v)) for v in clipped])


def det_png(results: Sequence[VerificationResult]) -> bytes:
    """FNMR against FMR on normal-deviate axes (rates of 0 drawn at half a count)."""
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    for r in results:
        n = min(r.scores.impostor.size, r.scores.genuine.size)
        (line,) = ax.plot(_probit(r.roc.fmr, n), _probit(r.roc.fnmr, n), label=r.run.pack)
        ax.plot(_probit(np.array([r.decisions.fmr]), n), _probit(np.array([r.decisions.fnmr]), n),
                "o", color=line.get_color())
    inv = NormalDist().inv_cdf
    ticks = [inv(t) for t in _DET_TICKS]
    labels = [f"{t:.1%}" for t in _DET_TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="false match rate (FMR)", ylabel="false non-match rate (FNMR)", title="DET")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    return _png(fig)


def histogram_png(result: VerificationResult) -> bytes:
    """Genuine and impostor score histograms with the operating threshold."""
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    g = result.scores.genuine[np.isfinite(result.scores.genuine)]
    i = result.scores.impostor[np.isfinite(result.scores.impostor)]
    finite = np.concatenate([g, i])
    bins: int | list[float] = 10  # every comparison failed: nothing to spread out
    if finite.size:
        bins = np.linspace(float(finite.min()), float(finite.max()), 40).tolist()
    ax.hist(i, bins=bins, alpha=0.6, label=f"impostor ({i.size})", color="tab:red")
    ax.hist(g, bins=bins, alpha=0.6, label=f"genuine ({g.size})", color="tab:green")
    ax.axvline(result.threshold.value, color="black", linestyle="--",
               label=f"threshold {result.threshold.value:.3f}")
    ax.set(xlabel="score (higher = more alike)", ylabel="pairs",
           title=f"Score distributions — {result.run.pack}")
    ax.legend()
    return _png(fig)


def groups_png(results: Sequence[VerificationResult]) -> bytes:
    """FMR and FNMR per evaluator-labelled group at the operating threshold, per pack."""
    fig = Figure(figsize=(_SIZE[0] * 1.6, _SIZE[1]))
    axes = fig.subplots(1, 2)
    width = 0.8 / max(1, len(results))
    for k, r in enumerate(results):
        if r.groups is None:
            continue
        names = [g.group for g in r.groups.groups]
        x = np.arange(len(names)) + k * width
        axes[0].bar(x, [g.decisions.fmr for g in r.groups.groups], width, label=r.run.pack)
        axes[1].bar(x, [g.decisions.fnmr for g in r.groups.groups], width, label=r.run.pack)
        for ax in axes:
            ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30)
    axes[0].set(title="FMR per group", ylabel="rate")
    axes[1].set(title="FNMR per group")
    axes[0].legend()
    return _png(fig)


def cmc_png(results: Sequence[IdentificationResult]) -> bytes:
    """Identification rate by rank, one line per pack."""
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    for r in results:
        ranks = np.arange(1, r.cmc.size + 1)
        ax.plot(ranks, r.cmc, marker="o", label=r.run.pack)
    ax.set(xlabel="rank", ylabel="identification rate", title="CMC", ylim=(0, 1.05))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    return _png(fig)
