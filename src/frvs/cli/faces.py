"""detect, verify and models: the face engine from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from frvs.cli.context import JsonOption, domain_errors, emit_json, output_console, state, who
from frvs.faces.models import Face
from frvs.imaging.decode import read_image

console = output_console()

ImagesArg = Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, WebP, BMP, TIFF).")]
PackOption = Annotated[
    str | None, typer.Option("--pack", help="Model pack (see 'frvs models'); default from config.")
]


def detect(
    ctx: typer.Context,
    images: ImagesArg,
    pack: PackOption = None,
    as_json: bool = JsonOption,
) -> None:
    """Find the faces in each image, with box, five landmarks, score and quality."""
    app = state(ctx).app
    results: list[tuple[Path, list[Face]]] = []
    with domain_errors(as_json):
        for path in images:
            image = read_image(path, app.image_limits)
            results.append((path, app.engine.detect(image, pack)))
    if as_json:
        documents = [{"image": str(p), "faces": [f.as_dict() for f in fs]} for p, fs in results]
        emit_json(documents[0] if len(documents) == 1 else documents)
        return
    for path, faces in results:
        console.print(f"[bold]{path}[/]: {len(faces)} face(s)")
        for i, face in enumerate(faces, 1):
            q = face.quality
            console.print(
                f"  {i}. box {face.detection.box.as_list()} score {face.detection.score:.3f} "
                f"quality {q.overall:.2f} (eyes {q.inter_eye_px:.0f} px, "
                f"sharpness {q.sharpness:.0f})"
            )


def verify(
    ctx: typer.Context,
    image_a: Annotated[Path, typer.Argument(help="First image.")],
    image_b: Annotated[Path, typer.Argument(help="Second image.")],
    pack: PackOption = None,
    threshold: Annotated[
        float | None, typer.Option(help="Decision threshold; default: the pack's default.")
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """1:1: are the largest faces of two images the same person?"""
    app = state(ctx).app
    with domain_errors(as_json):
        images = (read_image(image_a, app.image_limits), read_image(image_b, app.image_limits))
        result = app.engine.verify(who(ctx), images, (str(image_a), str(image_b)), pack,
                                   threshold)
    if as_json:
        emit_json(result.as_dict())
        return
    verdict = "[green]same person[/]" if result.same else "[red]different people[/]"
    console.print(
        f"{verdict}: score {result.score:.3f}, threshold {result.threshold:.3f} ({result.pack})"
    )
    for probe in (result.a, result.b):
        if probe.note:
            console.print(f"  {probe.image}: {probe.note}")


def models(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The configured model packs: provenance, licence, files and thresholds."""
    registry = state(ctx).app.packs
    infos = [registry.info(name).as_dict() | {"default": name == registry.default_name}
             for name in registry.names]
    if as_json:
        emit_json({"packs": infos})
        return
    table = Table("pack", "version", "dim", "metric", "default threshold", "provenance")
    for info in infos:
        thresholds = info["thresholds"]
        assert isinstance(thresholds, dict)
        name = f"{info['name']}{' (default)' if info['default'] else ''}"
        table.add_row(name, str(info["version"]), str(info["embedding_size"]),
                      str(info["metric"]), str(thresholds["default"]), str(info["provenance"]))
    console.print(table)
