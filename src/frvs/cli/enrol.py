"""enroll, identify and reindex: the commands that run a model pack."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from frvs.cli.context import (
    EXIT_CODES,
    EXIT_FILE_NOT_FOUND,
    JsonOption,
    domain_errors,
    emit_json,
    err_console,
    output_console,
    who,
)
from frvs.cli.galleries import service
from frvs.core.errors import FrvsError, InvalidInputError
from frvs.galleries.enrolment import EnrolItem, OutcomeCallback
from frvs.galleries.models import EnrolOutcome, EnrolReport, OutcomeStatus

console = output_console()

GalleryArg = Annotated[str, typer.Argument(help="Gallery name.")]


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[OutcomeCallback]:
    """A Rich progress bar on stderr, advanced once per outcome."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[last]}"))
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(label, total=total, last="")

        def advance(outcome: EnrolOutcome) -> None:
            progress.update(task, advance=1, last=f"{outcome.subject}: {outcome.status.value}")

        yield advance


def _parse_meta(pairs: list[str]) -> dict[str, str]:
    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--meta wants KEY=VALUE, got {pair!r}")
        meta[key.strip()] = value
    return meta


def _print_summary(report: EnrolReport) -> None:
    target = err_console
    target.print(f"[bold]{report.gallery}[/]: {report.count(OutcomeStatus.ENROLLED)} enrolled, "
                 f"{report.count(OutcomeStatus.DUPLICATE)} skipped as duplicates, "
                 f"{report.count(OutcomeStatus.REFUSED)} refused", highlight=False)
    for outcome in report.outcomes:
        if outcome.status is OutcomeStatus.REFUSED:
            target.print(f"  refused ({outcome.error_code}): {outcome.reason}", highlight=False)


def _error_class(code: str | None) -> type[FrvsError]:
    """The error class whose ``code`` an outcome recorded (FrvsError when none)."""
    pending: list[type[FrvsError]] = [FrvsError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls
        pending.extend(cls.__subclasses__())
    return FrvsError


def _refusal_exit_code(report: EnrolReport) -> int:
    refused = next((o for o in report.outcomes if o.status is OutcomeStatus.REFUSED), None)
    if refused is None:
        return 0
    if refused.error_code == "file_not_found":
        return EXIT_FILE_NOT_FOUND
    found = _error_class(refused.error_code)
    return next(code for cls, code in EXIT_CODES if issubclass(found, cls))


def enroll(
    ctx: typer.Context,
    gallery: GalleryArg,
    images: Annotated[list[Path] | None, typer.Argument(
        help="Images of the subject given by --subject.")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject id for IMAGE...")] = None,
    from_folder: Annotated[Path | None, typer.Option(
        "--from-folder", help="Enrol ROOT/<subject>/<images>; subject id = folder name.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name of --subject.")] = None,
    meta: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE metadata for --subject (repeatable). Keys naming race, ethnicity, "
        "skin colour, religion, politics, health, sexual orientation or emotion are refused.")
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Enrol images of one subject (--subject ID IMAGE...) or a folder tree (--from-folder).

    Each image needs exactly one face meeting the quality minimums. The same image twice
    is skipped. A folder import exits 0 with a summary of what was refused and why;
    enrolling --subject images exits with the error code of the first refusal.
    """
    with domain_errors(as_json):
        svc = service(ctx)
        if (from_folder is None) == (subject is None):
            raise InvalidInputError("give either --subject ID IMAGE... or --from-folder ROOT")
        if from_folder is not None:
            if images:
                raise InvalidInputError("--from-folder takes no IMAGE arguments")
            items = svc.plan_folder(from_folder)
        else:
            if not images:
                raise InvalidInputError("--subject needs at least one IMAGE")
            metadata = _parse_meta(meta or [])
            items = [EnrolItem(str(subject), p, name, metadata) for p in images]
        svc.get(gallery)  # fail before the bar when the gallery does not exist
        with progress_bar(len(items), f"enrolling into {gallery}") as advance:
            report = svc.enrol(who(ctx), gallery, items, advance)
    if as_json:
        emit_json(report.as_dict())
    _print_summary(report)
    if from_folder is None:
        code = _refusal_exit_code(report)
        if code:
            raise typer.Exit(code)


def identify(
    ctx: typer.Context,
    gallery: GalleryArg,
    image: Annotated[Path, typer.Argument(help="Probe image; every face in it is searched.")],
    top: Annotated[int, typer.Option(min=1, max=1000, help="Candidates per face.")] = 5,
    as_json: bool = JsonOption,
) -> None:
    """1:N: search every face of IMAGE in GALLERY; a match needs the gallery's threshold."""
    with domain_errors(as_json):
        result = service(ctx).identify(who(ctx, with_key=True), gallery, image, top)
    if as_json:
        emit_json(result.as_dict())
        return
    console.print(f"{len(result.faces)} face(s) in {image}; threshold {result.threshold:.3f} "
                  f"({result.pack})")
    for i, face in enumerate(result.faces, 1):
        verdict = f"[green]{face.match}[/]" if face.match else "[yellow]no match[/]"
        ranked = ", ".join(f"{c.subject} {c.score:.3f}" for c in face.candidates)
        console.print(f"  {i}. box {face.box.as_list()}: {verdict}  ({ranked or 'empty gallery'})")


def reindex(
    ctx: typer.Context,
    gallery: GalleryArg,
    pack: Annotated[str, typer.Option(help="The pack to re-embed with (see 'frvs models').")],
    as_json: bool = JsonOption,
) -> None:
    """Re-embed a gallery's source images with another pack and switch it to that pack."""
    with domain_errors(as_json):
        svc = service(ctx)
        total = svc.show(gallery)[0].templates
        with progress_bar(total, f"reindexing {gallery} with {pack}") as advance:
            report = svc.reindex(who(ctx), gallery, pack, advance)
    if as_json:
        emit_json(report.as_dict())
    else:
        data = report.as_dict()
        console.print(f"{data['reindexed']} template(s) re-embedded with {pack}; "
                      f"{'switched' if report.switched else 'NOT switched (refusals below)'}")
        for refusal in report.outcomes:
            if refusal.status is OutcomeStatus.REFUSED:
                console.print(f"  refused: {refusal.reason}")
    if not report.switched:
        raise typer.Exit(1)
