"""Self-contained HTML reports: one file, figures embedded as base64 PNG, no scripts, no
external resources, so a report can be archived, mailed and opened offline."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from frvs.core.errors import InvalidInputError
from frvs.evaluation import figures
from frvs.evaluation.models import Failure, IdentificationResult, VerificationResult

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em}
figure{display:inline-block;margin:.5em}img{max-width:100%}
"""

GROUPS_NOTE = ("Groups come only from the evaluator's labels in the data; FRVS never infers "
               "any group (sex, age, ethnicity or other) from a face.")


def _e(value: object) -> str:
    return html.escape(str(value))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(alt)}</figcaption></figure>")


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _failures(title: str, failures: Sequence[Failure]) -> str:
    if not failures:
        return f"<p>{_e(title)}: none.</p>"
    rows = [(f.image, f.code, f.message) for f in failures]
    return f"<h4>{_e(title)} ({len(failures)})</h4>" + _table(("image", "reason", "detail"), rows)


def _ci(r: VerificationResult, key: str) -> str:
    i = r.intervals.get(key)
    return "" if i is None else f" [{i.low:.4f}, {i.high:.4f}]"


def _verification_table(results: Sequence[VerificationResult]) -> str:
    rows: list[list[object]] = [
        ["threshold", *(f"{r.threshold.value:.4f}" for r in results)],
        ["threshold source", *(r.threshold.source for r in results)],
        ["accuracy [95% CI]", *(_f(r.decisions.accuracy) + _ci(r, "accuracy") for r in results)],
        ["true / false matches", *(f"{r.decisions.true_match} / {r.decisions.false_match}"
                                   for r in results)],
        ["true / false non-matches", *(f"{r.decisions.true_non_match} / "
                                       f"{r.decisions.false_non_match}" for r in results)],
        ["FMR at threshold", *(_f(r.decisions.fmr) for r in results)],
        ["FNMR at threshold (incl. FTA)", *(_f(r.decisions.fnmr) for r in results)],
        ["AUC [95% CI]", *(_f(r.auc) + _ci(r, "auc") for r in results)],
        ["EER [95% CI]", *(_f(r.eer.rate) + _ci(r, "eer") for r in results)],
        ["EER threshold", *(_f(r.eer.threshold) for r in results)],
    ]
    for k, p in enumerate(results[0].at_fmr):
        label = f"FNMR @ FMR={p.target_fmr:g}"
        rows.append([label, *(
            (f"{_f(r.at_fmr[k].fnmr)}{_ci(r, f'fnmr_at_fmr_{p.target_fmr:g}')} "
             f"(threshold {_f(r.at_fmr[k].threshold)})")
            if r.at_fmr[k].reachable else r.at_fmr[k].note for r in results)])
    rows.append(["failure to acquire (images)", *(len(r.failures) for r in results)])
    rows.append(["FTA pairs genuine / impostor", *(f"{r.fta_pairs[0]} / {r.fta_pairs[1]}"
                                                   for r in results)])
    rows.append(["template time (s, noisy)", *(f"{r.run.seconds:.1f}" for r in results)])
    return _table(["figure", *(f"{r.run.pack} ({r.run.pack_version})" for r in results)], rows)


def _groups_section(results: Sequence[VerificationResult]) -> str:
    with_groups = [r for r in results if r.groups is not None]
    if not with_groups:
        return (f"<h3>Per-group differentials</h3><p>The data carries no group labels. "
                f"{_e(GROUPS_NOTE)}</p>")
    parts = [f"<h3>Per-group differentials</h3><p class='note'>{_e(GROUPS_NOTE)}</p>"]
    for r in with_groups:
        g = r.groups
        if g is None:
            continue
        rows = [(x.group, x.genuine, x.impostor, _f(x.decisions.fmr), _f(x.decisions.fnmr))
                for x in g.groups]
        parts.append(f"<h4>{_e(r.run.pack)} at threshold {r.threshold.value:.4f}</h4>")
        parts.append(_table(("group", "genuine pairs", "impostor pairs", "FMR", "FNMR"), rows))
        for name, ratio in (("FMR", g.fmr_ratio), ("FNMR", g.fnmr_ratio)):
            if ratio is not None:
                d = ratio.as_dict()
                text = _f(ratio.value, 2) if ratio.value is not None else d["note"]
                parts.append(f"<p>{name} worst/best: {_e(text)} (worst {_e(ratio.worst_group)} "
                             f"{ratio.worst:.4f}, best {_e(ratio.best_group)} "
                             f"{ratio.best:.4f})</p>")
        if g.unlabelled_pairs:
            parts.append(f"<p>{g.unlabelled_pairs} pairs carry no group label.</p>")
    parts.append(_img(figures.groups_png(with_groups), "FMR and FNMR per group"))
    return "".join(parts)


def verification_html(results: Sequence[VerificationResult]) -> str:
    """The 1:1 section: data, figures per pack side by side, plots, failures."""
    first = results[0]
    s = first.scores
    parts = [
        "<h2>Verification (1:1)</h2>",
        f"<p>Data: <code>{_e(first.run.dataset)}</code> ({_e(first.run.dataset_kind)}): "
        f"{first.pairs} pairs — {s.genuine.size} genuine, {s.impostor.size} impostor — over "
        f"{first.run.images} images. No pair is excluded: a pair with an image without a "
        f"usable face is decided as a non-match (an error when genuine, a correct rejection "
        f"when impostor).</p>",
        "<p>Rules: a pair matches when score &ge; threshold; ties are never split; FNMR at a "
        "target FMR uses the lowest threshold whose FMR is at or below the target and is "
        "reported only when impostors &times; target &ge; 1; the EER is interpolated "
        "linearly between the bracketing operating points; 95% intervals are stratified "
        "percentile bootstraps over pairs (pairs sharing images or people are not "
        "independent, so they are optimistic).</p>",
        _verification_table(results),
        _img(figures.roc_png(results), "ROC"),
        _img(figures.det_png(results), "DET"),
        *(_img(figures.histogram_png(r), f"Score histogram {r.run.pack}") for r in results),
        _groups_section(results),
        *(_failures(f"Failures to acquire ({r.run.pack})", r.failures) for r in results),
    ]
    return "".join(parts)


def identification_html(results: Sequence[IdentificationResult]) -> str:
    """The 1:N section: gallery, CMC, open-set figures, exclusions."""
    first = results[0]
    mated = sum(s.mated for s in first.searches)
    rows: list[list[object]] = [
        ["rank-1", *(_f(r.rank(1)) for r in results)],
        ["rank-5", *(_f(r.rank(5)) for r in results)],
        ["rank-10", *(_f(r.rank(10)) for r in results)],
        ["threshold", *(f"{r.threshold.value:.4f}" for r in results)],
        ["threshold source", *(r.threshold.source for r in results)],
        ["FNIR at threshold (rank 1)", *(_f(r.open_set.fnir) for r in results)],
        ["FPIR at threshold", *(_f(r.open_set.fpir) for r in results)],
        ["open-set note", *(r.open_set.note for r in results)],
        ["failure to enrol", *(", ".join(r.failed_to_enrol) or "none" for r in results)],
        ["failure to acquire (images)", *(len(r.failures) for r in results)],
    ]
    parts = [
        "<h2>Identification (1:N)</h2>",
        f"<p>Data: <code>{_e(first.run.dataset)}</code>, layout {_e(first.layout)}: "
        f"{len(first.enrolled)} enrolled people ({first.gallery_templates} templates), "
        f"{mated} mated and {len(first.searches) - mated} non-mated searches. Exact search "
        f"in memory; ties in rank count against the system.</p>",
        _table(["figure", *(r.run.pack for r in results)], rows),
        _img(figures.cmc_png(results), "CMC"),
        _failures("Excluded probes", first.excluded),
        *(_failures(f"Failures to acquire ({r.run.pack})", r.failures) for r in results),
    ]
    for r in results:
        rows2 = [(s.probe, s.identity, "yes" if s.mated else "no",
                  s.as_dict()["rank"] or "miss", s.top_identity or "-", _f(s.top_score))
                 for s in r.searches]
        parts.append(f"<h4>Searches ({_e(r.run.pack)})</h4>")
        parts.append(_table(("probe", "labelled", "enrolled", "rank", "top candidate",
                             "top score"), rows2))
    return "".join(parts)


def _frvs_version() -> str:
    try:
        return version("frvs")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def render(verification: Sequence[VerificationResult],
           identification: Sequence[IdentificationResult]) -> str:
    """The whole report as one HTML string."""
    packs = sorted({r.run.pack for r in verification} | {r.run.pack for r in identification})
    body = [
        f"<h1>FRVS evaluation report</h1><p>Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"by FRVS {_e(_frvs_version())}; packs: {_e(', '.join(packs))}.</p>",
        f"<p class='note'>{_e(GROUPS_NOTE)} Figures on small data sets are indicative only: "
        "read the counts and the intervals.</p>",
    ]
    if verification:
        body.append(verification_html(verification))
    if identification:
        body.append(identification_html(identification))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>FRVS evaluation report</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>")


def write_report(directory: Path, verification: Sequence[VerificationResult],
                 identification: Sequence[IdentificationResult]) -> Path:
    """Write ``report.html`` into ``directory`` (created) and return its path."""
    if not verification and not identification:
        raise InvalidInputError("nothing to report")
    directory.mkdir(parents=True, exist_ok=True)
    name = "verification" if verification else "identification"
    path = directory / f"{name}-report.html"
    path.write_text(render(verification, identification), encoding="utf-8")
    return path
