"""frvs eval verification | identification, and frvs calibrate: thin shells over
``frvs.evaluation``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from frvs.cli.context import (
    JsonOption,
    domain_errors,
    emit_json,
    err_console,
    output_console,
    state,
)
from frvs.evaluation.datasets import load_identities, load_pairs
from frvs.evaluation.models import IdentificationResult, VerificationResult
from frvs.evaluation.runner.service import EvaluationService

console = output_console()

eval_app = typer.Typer(
    name="eval",
    help="Measure accuracy: 1:1 verification on labelled pairs, 1:N identification on an "
    "image tree; JSON and a self-contained HTML report.",
    no_args_is_help=True,
)

PacksOption = Annotated[
    list[str] | None,
    typer.Option("--pack", help="Model pack; repeat to compare packs side by side."),
]
ReportOption = Annotated[
    Path | None, typer.Option("--report", help="Write a self-contained HTML report into DIR.")
]
ThresholdOption = Annotated[
    float | None, typer.Option("--threshold", help="Operating threshold; default: the pack's.")
]
WorkersOption = Annotated[
    int, typer.Option("--workers", min=1, max=32,
                      help="Processes making templates. Each loads the pack (about 1 s) and "
                      "ONNX Runtime already uses every core, so more than 1 helps only on "
                      "machines with spare cores and many images.")
]


@contextmanager
def rich_progress(label: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (stdout stays clean for --json)."""
    with RichProgress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def _service(ctx: typer.Context, workers: int) -> EvaluationService:
    return EvaluationService(state(ctx).app, rich_progress, workers)


@eval_app.command("verification")
def verification(
    ctx: typer.Context,
    pairs: Annotated[Path, typer.Argument(help="Pairs CSV (image_a,image_b,same[,group]) or "
                                          "LFW pairs.txt.")],
    packs: PacksOption = None,
    images: Annotated[Path | None, typer.Option(
        "--images", help="Image root (default: the pairs file's folder).")] = None,
    threshold: ThresholdOption = None,
    report: ReportOption = None,
    workers: WorkersOption = 1,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap intervals.")] = 0,
    as_json: bool = JsonOption,
) -> None:
    """1:1 accuracy on labelled pairs: ROC/DET, AUC, EER, FNMR@FMR, per-group figures."""
    from frvs.evaluation.metrics import BootstrapOptions

    with domain_errors(as_json):
        data = load_pairs(pairs, images)
        service = _service(ctx, workers)
        names = packs or [state(ctx).app.packs.default_name]
        results = [service.verification(data, name, threshold, BootstrapOptions(seed=seed))
                   for name in names]
        path = _write_report(report, results) if report else None
    if as_json:
        docs = [r.as_dict() | ({"report": str(path)} if path else {}) for r in results]
        emit_json(docs[0] if len(docs) == 1 else {"packs": docs})
        return
    _print_verification(results)
    if path:
        console.print(f"report: {path}")


@eval_app.command("identification")
def identification(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="Image tree: gallery/ + probe/, train/ + test/, "
                                         "or <person>/ folders split by --seed.")],
    packs: PacksOption = None,
    labels: Annotated[Path | None, typer.Option(
        "--labels", help="CSV image,identity labelling flat probe images.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the gallery/probe split.")] = 0,
    threshold: ThresholdOption = None,
    report: ReportOption = None,
    workers: WorkersOption = 1,
    as_json: bool = JsonOption,
) -> None:
    """1:N accuracy: CMC (rank 1, 5, 10), FNIR at FPIR, failures to enrol and acquire."""
    with domain_errors(as_json):
        data = load_identities(root, labels, seed)
        service = _service(ctx, workers)
        names = packs or [state(ctx).app.packs.default_name]
        results = [service.identification(data, name, threshold) for name in names]
        path = _write_report(report, [], results) if report else None
    if as_json:
        docs = [r.as_dict() | ({"report": str(path)} if path else {}) for r in results]
        emit_json(docs[0] if len(docs) == 1 else {"packs": docs})
        return
    _print_identification(results)
    if path:
        console.print(f"report: {path}")


def calibrate(
    ctx: typer.Context,
    pairs: Annotated[Path, typer.Argument(help="Labelled pairs (CSV or LFW pairs.txt) of the "
                                          "deployment's own population.")],
    target_fmr: Annotated[float, typer.Option("--target-fmr", min=1e-9, max=0.5,
                                              help="False match rate to calibrate for.")],
    pack: Annotated[str | None, typer.Option("--pack", help="Model pack (default: config).")]
    = None,
    images: Annotated[Path | None, typer.Option("--images", help="Image root.")] = None,
    write: Annotated[Path | None, typer.Option(
        "--write", help="YAML configuration to write the threshold into (created if "
        "missing; other keys kept).")] = None,
    as_default: Annotated[bool, typer.Option(
        "--as-default", help="Also make it the pack's operating threshold.")] = False,
    workers: WorkersOption = 1,
    as_json: bool = JsonOption,
) -> None:
    """The threshold reaching a target FMR on labelled pairs; optionally written to config."""
    from frvs.config.thresholds_file import write_calibration
    from frvs.evaluation.calibration import calibrate as run_calibration
    from frvs.evaluation.metrics import BootstrapOptions

    with domain_errors(as_json):
        data = load_pairs(pairs, images)
        name = pack or state(ctx).app.packs.default_name
        result = _service(ctx, workers).verification(data, name,
                                                     bootstrap=BootstrapOptions(resamples=1))
        calibration = run_calibration(result.scores, target_fmr, name, pairs)
        if write is not None:
            write_calibration(write, calibration, as_default)
    if as_json:
        emit_json(calibration.as_dict() | {"written_to": str(write) if write else None,
                                           "as_default": as_default,
                                           "failure_to_acquire": len(result.failures)})
        return
    console.print(f"{name}: threshold {calibration.threshold:.6f} for FMR {target_fmr:g} "
                  f"(measured FMR {calibration.fmr:.4g}, FNMR {calibration.fnmr:.4g}, "
                  f"{calibration.impostor} impostor pairs)")
    if write is not None:
        console.print(f"written to {write}{' as the default threshold' if as_default else ''}")


def _write_report(directory: Path, verification_results: list[VerificationResult],
                  identification_results: list[IdentificationResult] | None = None) -> Path:
    from frvs.evaluation.report import write_report

    return write_report(directory, verification_results, identification_results or [])


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _print_verification(results: list[VerificationResult]) -> None:
    """Figures as rows and packs as columns, so side-by-side packs fit a terminal."""
    table = Table("figure", *(r.run.pack for r in results))
    rows: list[tuple[str, list[str]]] = [
        ("pairs (genuine/impostor)", [f"{r.pairs} ({r.scores.genuine.size}/"
                                      f"{r.scores.impostor.size})" for r in results]),
        ("threshold", [f"{r.threshold.value:.4f}" for r in results]),
        ("accuracy", [_fmt(r.decisions.accuracy) for r in results]),
        ("FMR / FNMR at threshold", [f"{_fmt(r.decisions.fmr)} / {_fmt(r.decisions.fnmr)}"
                                     for r in results]),
        ("AUC", [_fmt(r.auc) for r in results]),
        ("EER", [_fmt(r.eer.rate) for r in results]),
    ]
    for k, p in enumerate(results[0].at_fmr):
        rows.append((f"FNMR @ FMR={p.target_fmr:g}", [
            _fmt(r.at_fmr[k].fnmr) if r.at_fmr[k].reachable else "not reachable"
            for r in results]))
    rows.append(("failure to acquire (images)", [str(len(r.failures)) for r in results]))
    for label, cells in rows:
        table.add_row(label, *cells)
    console.print(table)
    for p in results[0].at_fmr:
        if not p.reachable:
            console.print(f"FMR {p.target_fmr:g}: {p.note}")
    console.print(f"threshold source ({results[0].run.pack}): {results[0].threshold.source}")


def _print_identification(results: list[IdentificationResult]) -> None:
    table = Table("figure", *(r.run.pack for r in results))
    docs = [r.as_dict() for r in results]
    rows: list[tuple[str, list[str]]] = [
        ("enrolled people", [str(len(r.enrolled)) for r in results]),
        ("mated / non-mated searches", [f"{d['mated_searches']} / {d['non_mated_searches']}"
                                        for d in docs]),
        ("rank-1 / 5 / 10", [f"{_fmt(r.rank(1), 3)} / {_fmt(r.rank(5), 3)} / "
                             f"{_fmt(r.rank(10), 3)}" for r in results]),
        ("FNIR at threshold", [_fmt(r.open_set.fnir) for r in results]),
        ("FPIR at threshold", [_fmt(r.open_set.fpir) for r in results]),
        ("failure to enrol / acquire", [f"{len(r.failed_to_enrol)} / {len(r.failures)}"
                                        for r in results]),
    ]
    for label, cells in rows:
        table.add_row(label, *cells)
    console.print(table)
    for e in results[0].excluded:
        console.print(f"excluded {e.image}: {e.message}")
    if results[0].open_set.fpir is None:
        console.print(results[0].open_set.note)
