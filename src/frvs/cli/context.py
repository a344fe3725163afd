"""What every command shares: settings, the lazily built application, output helpers."""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from frvs.core import errors
from frvs.core.caller import Actor, AuditContext, Role

if TYPE_CHECKING:  # imported when the application is first built: not for --help
    from frvs.app import Application
    from frvs.config.settings import Settings

logger = logging.getLogger("frvs.cli")

PIPED_WIDTH = 1000
"""Columns of output that goes to a file or a pipe: wide enough that no table cell (a
key id to revoke, a path) is cut or wrapped, where a terminal would have its width."""


def output_console(stderr: bool = False) -> Console:
    """A Rich console as wide as the terminal, or ``PIPED_WIDTH`` (``COLUMNS`` if set)
    when the output is piped or redirected: Rich's own default there is 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS") or PIPED_WIDTH)
    return Console(stderr=stderr, width=width)


err_console = output_console(stderr=True)

# Exit codes, one per class of failure, so scripts can tell them apart.
EXIT_CODES: list[tuple[type[errors.FrvsError], int]] = [
    (errors.EmptyImageError, 10),
    (errors.NotAnImageError, 11),
    (errors.CorruptImageError, 12),
    (errors.ImageTooLargeError, 13),
    (errors.NoFaceError, 14),
    (errors.LowQualityFaceError, 15),
    (errors.NotFoundError, 16),
    (errors.ConflictError, 17),
    (errors.PermissionDeniedError, 18),
    (errors.ModelSpaceMismatchError, 19),
    (errors.ModelError, 20),
    (errors.ConfigurationError, 21),
    (errors.FileReadError, 9),
    (errors.InvalidInputError, 22),
    (errors.FrvsError, 1),
]
EXIT_FILE_NOT_FOUND = 9


def exit_code_for(error: errors.FrvsError) -> int:
    return next(code for cls, code in EXIT_CODES if isinstance(error, cls))


@dataclass
class CliState:
    """Options given before the command, and the application built from them on demand."""

    data_dir: Path | None = None
    config_file: Path | None = None
    _app: Application | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return self.app.settings

    def close(self) -> None:
        """Close the store of the application, if it was built: its SQLite connections
        end now (the write-ahead log checkpointed), not whenever the interpreter exits."""
        if self._app is not None:
            self._app.store.close()

    @property
    def app(self) -> Application:
        if self._app is None:
            from frvs.app import build_application
            from frvs.config.settings import load_settings

            settings = load_settings(self.config_file, data_dir=self.data_dir)
            self._app = build_application(settings)
        return self._app


def os_user() -> str:
    """The OS user running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def caller(app: Application, *, with_key: bool = False,
           roles: tuple[Role, ...] | None = None) -> AuditContext:
    """Who acts at the command line: the OS user and the case reference and purpose
    they declared in ``FRVS_CASE_REFERENCE`` / ``FRVS_PURPOSE``; where it searches
    (``with_key``), also the key in ``FRVS_API_KEY`` when one is set (authenticated;
    its holder is the person).

    With ``roles``, a key of one of those roles (or admin) is required: reviews count
    people, and only a key vouches for one.
    """
    token = os.environ.get("FRVS_API_KEY", "").strip() if with_key or roles else ""
    case = os.environ.get("FRVS_CASE_REFERENCE") or None
    purpose = os.environ.get("FRVS_PURPOSE") or None
    if not token:
        if roles is not None:
            wanted = " or ".join(r.value for r in roles)
            raise errors.PermissionDeniedError(
                f"this needs a {wanted} key in FRVS_API_KEY: it is recorded as the person "
                "holding that key ('frvs key create NAME --role ROLE --holder PERSON')")
        return AuditContext(Actor("cli", os_user()), case, purpose)
    key = app.oversight.keys.authenticate(token)
    if roles is not None and key.role not in (*roles, Role.ADMIN):
        raise errors.PermissionDeniedError(
            f"keys of role {key.role.value} may not do this (allowed: "
            f"{', '.join(r.value for r in (*roles, Role.ADMIN))})")
    return AuditContext(Actor("cli", os_user(), key.key_id, key.role, key.holder), case,
                        purpose)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # pragma: no cover - set by the root callback
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def who(ctx: typer.Context, *, with_key: bool = False,
        roles: tuple[Role, ...] | None = None) -> AuditContext:
    """The caller of a command (see ``caller``)."""
    return caller(state(ctx).app, with_key=with_key, roles=roles)


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def fail(error: errors.FrvsError, as_json: bool) -> NoReturn:
    """Report ``error`` on stderr (and as JSON on stdout with --json) and exit with its code."""
    code = exit_code_for(error)
    if as_json:
        emit_json({"error": error.code, "message": error.message, "exit_code": code})
    err_console.print(f"[bold red]error[/] ({error.code}): {error.message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def domain_errors(as_json: bool) -> Iterator[None]:
    """Turn FRVS errors into a clear message and a distinct exit code, never a traceback."""
    try:
        yield
    except errors.FrvsError as exc:
        fail(exc, as_json)
    except FileNotFoundError as exc:
        if as_json:
            emit_json({"error": "file_not_found", "message": str(exc),
                       "exit_code": EXIT_FILE_NOT_FOUND})
        err_console.print(f"[bold red]error[/] (file_not_found): {exc}", highlight=False)
        raise typer.Exit(EXIT_FILE_NOT_FOUND) from exc


JsonOption = typer.Option(False, "--json", help="Print one JSON document on stdout.")

Renderer = Callable[[Any], None]
