"""The ``frvs`` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from frvs.cli import admin, evaluation, faces, serve
from frvs.cli.checks import check
from frvs.cli.context import CliState
from frvs.cli.doctor import doctor
from frvs.cli.edge import edge_app
from frvs.cli.enrol import enroll, identify, reindex
from frvs.cli.galleries import crossmatch, gallery_app, purge, subject_app
from frvs.cli.video import alerts_app, attendance_app, camera_app, sightings, watch
from frvs.cli.webhooks import webhook_app

app = typer.Typer(
    name="frvs",
    help="FRVS: open, self-hosted face recognition for visual surveillance, with oversight.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="FRVS_DATA_DIR", help="Data directory (default ./data)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", envvar="FRVS_CONFIG", help="YAML configuration.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Options that apply to every command."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = CliState(data_dir=data_dir, config_file=config)


app.command()(faces.detect)
app.command()(faces.verify)
app.command()(faces.models)
app.command()(check)
app.command()(serve.serve)
app.command()(admin.init)
app.add_typer(admin.key_app, name="key")
app.add_typer(admin.audit_app, name="audit")
app.command()(admin.stats)
app.command()(doctor)
app.add_typer(gallery_app, name="gallery")
app.add_typer(subject_app, name="subject")
app.command()(enroll)
app.command()(identify)
app.command()(crossmatch)
app.command()(purge)
app.command()(reindex)
app.add_typer(evaluation.eval_app, name="eval")
app.command()(evaluation.calibrate)
app.command()(watch)
app.add_typer(camera_app, name="camera")
app.command()(sightings)
app.add_typer(alerts_app, name="alerts")
app.add_typer(attendance_app, name="attendance")
app.add_typer(edge_app, name="edge")
app.add_typer(webhook_app, name="webhook")


def main() -> None:
    """Console-script entry point."""
    app()
