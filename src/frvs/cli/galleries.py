"""gallery create|list|show|delete, subject delete, crossmatch: thin shells over
``GalleryService``; purge: over ``Retention``. None of these loads a model pack."""

from __future__ import annotations

import csv
import sys
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from frvs.cli.context import (
    JsonOption,
    domain_errors,
    emit_json,
    err_console,
    output_console,
    state,
    who,
)
from frvs.core.errors import InvalidInputError
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.galleries.service import GalleryOverview, GalleryService

console = output_console()

gallery_app = typer.Typer(help="Create, list, show and delete galleries.", no_args_is_help=True)
subject_app = typer.Typer(help="Manage enrolled subjects.", no_args_is_help=True)

GalleryArg = Annotated[str, typer.Argument(help="Gallery name.")]


def service(ctx: typer.Context) -> GalleryService:
    """The gallery service with its store open (migrated on first use)."""
    app = state(ctx).app
    app.store.open()
    return app.galleries


def _overview_row(table: Table, o: GalleryOverview) -> None:
    g = o.gallery
    table.add_row(g.name, g.kind.value, str(o.subjects), str(o.templates), g.pack,
                  f"{o.threshold:.3f}", str(g.retention_days or "-"), g.purpose or "-")


@gallery_app.command("create")
def create(
    ctx: typer.Context,
    name: GalleryArg,
    kind: Annotated[GalleryKind, typer.Option(
        help="What the gallery is for: watch_list (or watchlist), attendance, verification, "
        "general.", parser=GalleryKind, metavar="KIND")] = GalleryKind.GENERAL,
    purpose: Annotated[str | None, typer.Option(
        help="Why it exists (watch list: required).")] = None,
    legal_basis: Annotated[str | None, typer.Option(
        "--legal-basis", help="The legal basis for processing (watch list: required).")] = None,
    retention_days: Annotated[int | None, typer.Option(
        "--retention-days", help="Delete subjects this many days after enrolment "
        "('frvs purge'); default: keep until deleted.")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Decision threshold; default: the pack's threshold for --fmr, else its default.")
    ] = None,
    fmr: Annotated[float | None, typer.Option(
        "--fmr", help="Target false match rate, when the pack has a calibrated threshold.")
    ] = None,
    keep_crops: Annotated[bool | None, typer.Option(
        "--keep-crops/--no-keep-crops", show_default=False,
        help="Store aligned face crops under data/media. Default: yes for a watch list "
        "(its alerts' reviewers compare the best shot with the enrolled photo, as in the "
        "console), no for other kinds.")] = None,
    pack: Annotated[str | None, typer.Option(help="Model pack; default from config.")] = None,
    as_json: bool = JsonOption,
) -> None:
    """Create a gallery. NAME alone makes a general gallery: no retention limit, no crops,
    the default pack at its default threshold. A watch list keeps enrolment crops unless
    told --no-keep-crops."""
    with domain_errors(as_json):
        crops = keep_crops if keep_crops is not None else kind is GalleryKind.WATCH_LIST
        spec = GallerySpec(name, kind, purpose, legal_basis, retention_days, threshold, fmr,
                           crops, pack)
        gallery = service(ctx).create(who(ctx), spec)
    if as_json:
        emit_json(gallery.as_dict())
    else:
        console.print(f"created {gallery.kind.value} gallery [bold]{gallery.name}[/] "
                      f"(pack {gallery.pack})")


@gallery_app.command("list")
def list_galleries(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Every gallery with its counts."""
    with domain_errors(as_json):
        overviews = service(ctx).all()
    if as_json:
        emit_json({"galleries": [o.as_dict() for o in overviews]})
        return
    table = Table("gallery", "kind", "subjects", "templates", "pack", "threshold",
                  "retention (days)", "purpose")
    for o in overviews:
        _overview_row(table, o)
    console.print(table)


@gallery_app.command("show")
def show(ctx: typer.Context, name: GalleryArg, as_json: bool = JsonOption) -> None:
    """A gallery's settings and its subjects."""
    with domain_errors(as_json):
        overview, subjects = service(ctx).show(name)
    if as_json:
        emit_json(overview.as_dict() | {"subject_list": [s.as_dict() for s in subjects]})
        return
    for key, value in overview.as_dict().items():
        console.print(f"[bold]{key}[/]: {value}")
    table = Table("subject", "name", "templates", "enrolled", "expires")
    for s in subjects:
        table.add_row(s.external_id, s.display_name or "-", str(s.template_count),
                      s.created_at.isoformat(timespec="seconds"),
                      s.expires_at.isoformat(timespec="seconds") if s.expires_at else "-")
    console.print(table)


@gallery_app.command("update")
def update(
    ctx: typer.Context,
    name: GalleryArg,
    purpose: Annotated[str | None, typer.Option(
        help="New purpose ('' clears it; a watch list must keep one).")] = None,
    legal_basis: Annotated[str | None, typer.Option(
        "--legal-basis", help="New legal basis ('' clears it; a watch list must keep one).")
    ] = None,
    retention_days: Annotated[int | None, typer.Option(
        "--retention-days", help="New retention; every subject's expiry is re-dated from "
        "its enrolment.")] = None,
    no_retention: Annotated[bool, typer.Option(
        "--no-retention", help="Keep subjects until deleted.")] = False,
    threshold: Annotated[float | None, typer.Option(help="New decision threshold.")] = None,
    clear_threshold: Annotated[bool, typer.Option(
        "--clear-threshold", help="Decide at the pack's threshold (for --fmr) again.")] = False,
    fmr: Annotated[float | None, typer.Option("--fmr", help="New target FMR.")] = None,
    keep_crops: Annotated[bool | None, typer.Option(
        "--keep-crops/--no-keep-crops", help="Store aligned face crops from now on, or not.",
        show_default=False)] = None,
    as_json: bool = JsonOption,
) -> None:
    """Change a gallery's settings; what is not given stays (audited, with the old values)."""
    changes: dict[str, object] = {k: v for k, v in {
        "purpose": purpose, "legal_basis": legal_basis, "retention_days": retention_days,
        "threshold": threshold, "fmr_target": fmr, "keep_crops": keep_crops}.items()
        if v is not None}
    with domain_errors(as_json):
        for given, clearing, what in ((retention_days, no_retention, "--retention-days"),
                                      (threshold, clear_threshold, "--threshold")):
            if given is not None and clearing:
                raise InvalidInputError(f"{what} and its clearing option contradict each other")
        for text in ("purpose", "legal_basis"):
            if changes.get(text) == "":
                changes[text] = None
        if no_retention:
            changes["retention_days"] = None
        if clear_threshold:
            changes["threshold"] = None
        if not changes:
            raise InvalidInputError("nothing to change: give at least one option "
                                    "(see frvs gallery update --help)")
        overview = service(ctx).update(who(ctx), name, changes)
    if as_json:
        emit_json(overview.as_dict())
    else:
        console.print(f"updated {name}: " + ", ".join(f"{k}={v}" for k, v in changes.items())
                      + f"; decision threshold {overview.threshold:.4f}")


@gallery_app.command("delete")
def delete(
    ctx: typer.Context,
    name: GalleryArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: bool = JsonOption,
) -> None:
    """Delete a gallery with all its subjects, templates and crops."""
    if not (yes or as_json) and not typer.confirm(f"Delete gallery {name!r} and everything "
                                                  "enrolled in it?"):
        raise typer.Exit(1)
    with domain_errors(as_json):
        overview = service(ctx).delete(who(ctx), name)
    if as_json:
        emit_json({"deleted": overview.as_dict()})
    else:
        console.print(f"deleted gallery {name} ({overview.subjects} subjects, "
                      f"{overview.templates} templates)")


@subject_app.command("delete")
def delete_subject(
    ctx: typer.Context,
    gallery: GalleryArg,
    subject: Annotated[str, typer.Argument(help="Subject id.")],
    as_json: bool = JsonOption,
) -> None:
    """Delete a subject with its templates, crops and index entries."""
    with domain_errors(as_json):
        deleted = service(ctx).delete_subject(who(ctx), gallery, subject)
    if as_json:
        emit_json({"deleted": deleted.as_dict()})
    else:
        console.print(f"deleted subject {subject} from {gallery} ({deleted.templates} "
                      f"templates, {deleted.crops} crops)")


def purge(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Run retention now (what 'frvs serve' runs every retention.interval_s): delete
    subjects past their gallery's retention, expired sightings with their crops and the
    evidence of decided alerts past their gallery's retention; audited with the counts."""
    with domain_errors(as_json):
        service(ctx)  # the store open (migrated on first use)
        report = state(ctx).app.retention.run(who(ctx))
    if as_json:
        emit_json(report.as_dict())
        return
    for d in report.subjects:
        console.print(f"deleted {d.gallery}/{d.subject} ({d.templates} templates)")
    console.print(f"{len(report.subjects)} subject(s) past retention deleted, "
                  f"{report.sightings} expired sighting(s) ({report.sighting_crops} crops), "
                  f"{report.alert_evidence} alert picture(s) past retention")


def crossmatch(
    ctx: typer.Context,
    gallery_a: Annotated[str, typer.Argument(help="First gallery.")],
    gallery_b: Annotated[str | None, typer.Argument(
        help="Second gallery; omitted: find likely duplicates inside the first.")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Report pairs scoring at least this; default: the second gallery's threshold.")
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=1000,
                                     help="Candidates per template searched.")] = 10,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV (a,b,score).")] = False,
    as_json: bool = JsonOption,
) -> None:
    """N:M cross-match of two galleries, or of one against itself (duplicates)."""
    with domain_errors(as_json):
        result = service(ctx).crossmatch(who(ctx, with_key=True), gallery_a, gallery_b,
                                          threshold, top)
    if as_json:
        emit_json(result.as_dict())
    elif csv_out:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["a", "b", "score"])
        for p in result.pairs:
            writer.writerow([p.subject_a, p.subject_b, f"{p.score:.6f}"])
    else:
        table = Table(result.gallery_a, result.gallery_b, "score")
        for p in result.pairs:
            table.add_row(p.subject_a, p.subject_b, f"{p.score:.3f}")
        console.print(table)
        console.print(f"{len(result.pairs)} pair(s) at or above {result.threshold:.3f}")


@gallery_app.command("calibrate")
def calibrate(
    ctx: typer.Context,
    name: GalleryArg,
    fpir: Annotated[float, typer.Option(
        "--fpir", help="Target false positive identification rate: the share of searches "
        "for someone not enrolled that may return a match.")] = 0.01,
    apply: Annotated[bool, typer.Option(
        "--apply", help="Make the measured threshold the gallery's (audited).")] = False,
    as_json: bool = JsonOption,
) -> None:
    """Measure the gallery's 1:N threshold on its own subjects: each template is searched
    against the rest, as a search for someone not enrolled. Prints the threshold for
    --fpir, the FNIR it costs (subjects with several templates), and FPIR at the current
    threshold. Re-run after the gallery grows: FPIR rises with its size."""
    with domain_errors(as_json), Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err_console, transient=True,
    ) as bar:
        task = bar.add_task(f"searching {name} against itself", total=None)
        result = service(ctx).calibrate(
            who(ctx), name, fpir, apply,
            lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        emit_json(result.as_dict())
        return
    fnir = "-" if result.fnir is None else f"{result.fnir:.4f}"
    current_fnir = "-" if result.current_fnir is None else f"{result.current_fnir:.4f}"
    table = Table("", "threshold", "FPIR", f"FNIR ({result.mated_probes} mated searches)")
    table.add_row("for the target", f"{result.threshold:.4f}", f"≤ {fpir:g}", fnir)
    table.add_row("current", f"{result.current_threshold:.4f}", f"{result.current_fpir:.4f}",
                  current_fnir)
    console.print(table)
    points = ", ".join(f"FPIR {f:g}: {'-' if t is None else f'{t:.4f}'}"
                       for f, t in result.curve)
    console.print(f"{result.probes} searches of {result.subjects} subjects "
                  f"({result.templates} templates in the gallery). {points}")
    console.print("Assumes every subject is a different person (check with 'frvs crossmatch "
                  f"{name}') and enrolment photos stand in for live probes.")
    if result.threshold < result.current_threshold:
        console.print(f"[yellow]note[/]: {result.threshold:.4f} is below the current threshold "
                      f"{result.current_threshold:.4f}: this gallery is small enough that the "
                      "current one is stricter than the target needs; applying it lets more "
                      "low-quality live faces match.")
    console.print(f"applied: threshold of {name} is now {result.threshold:.4f}" if result.applied
                  else "not applied (use --apply)")
