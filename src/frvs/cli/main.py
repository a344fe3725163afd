"""The ``frvs`` command line.

Each command's module is imported only when that command runs or its help is shown
(``COMMANDS``): ``frvs verify`` loads the face engine, not the video, evaluation, edge or
HTTP commands and what they import.
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from frvs.cli.context import CliState

if TYPE_CHECKING:  # the Click that the installed Typer runs on (it vendors it as typer._click)
    from typer._click import Command, Context

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module in frvs.cli, its command function or Typer sub-app), in help order
    "detect": ("faces", "detect"),
    "verify": ("faces", "verify"),
    "models": ("faces", "models"),
    "check": ("checks", "check"),
    "serve": ("serve", "serve"),
    "init": ("admin", "init"),
    "stats": ("admin", "stats"),
    "doctor": ("doctor", "doctor"),
    "enroll": ("enrol", "enroll"),
    "identify": ("enrol", "identify"),
    "crossmatch": ("galleries", "crossmatch"),
    "purge": ("galleries", "purge"),
    "reindex": ("enrol", "reindex"),
    "calibrate": ("evaluation", "calibrate"),
    "watch": ("video", "watch"),
    "sightings": ("video", "sightings"),
    "key": ("admin", "key_app"),
    "audit": ("admin", "audit_app"),
    "gallery": ("galleries", "gallery_app"),
    "subject": ("galleries", "subject_app"),
    "eval": ("evaluation", "eval_app"),
    "camera": ("video", "camera_app"),
    "alerts": ("video", "alerts_app"),
    "attendance": ("video", "attendance_app"),
    "edge": ("edge", "edge_app"),
    "webhook": ("webhooks", "webhook_app"),
}


def load_command(name: str) -> Command:
    """Import ``name``'s module and build its Click command as ``app.command()`` (a
    function) or ``app.add_typer(sub_app, name=name)`` (a Typer) would have."""
    module, attribute = COMMANDS[name]
    target: Any = getattr(importlib.import_module(f"frvs.cli.{module}"), attribute)
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command()(target)
    return typer.main.get_group(holder).commands[name]


class LazyCommands(MutableMapping[str, "Command"]):
    """The root group's commands by name: every name known, each built on first use."""

    def __init__(self, built: MutableMapping[str, Command]) -> None:
        self._built = dict(built)
        self._names = [*COMMANDS, *(n for n in built if n not in COMMANDS)]

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = load_command(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class LazyGroup(TyperGroup):
    """The root group, its commands in a ``LazyCommands``."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands)

    def list_commands(self, ctx: Context) -> list[str]:  # noqa: ARG002
        return list(self.commands)  # names only: listing builds nothing


app = typer.Typer(
    name="frvs",
    help="FRVS: open, self-hosted face recognition for visual surveillance, with oversight.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
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
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    finally:
        # The command is over (its store closed) and the process ends: what is still
        # alive is freed with it. Frozen, the interpreter's exit no longer walks all of
        # it in full garbage collections: 0.5 s of a one-shot 'frvs verify'.
        gc.freeze()
