"""init, key create|list|update|revoke, audit verify|checkpoint|list|purge, stats:
administering FRVS.

Every key change is audited with the local OS user as the actor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from frvs.app import Application
from frvs.cli.context import (
    JsonOption,
    caller,
    domain_errors,
    emit_json,
    err_console,
    output_console,
    state,
)
from frvs.core.errors import InvalidInputError
from frvs.oversight.anchors import Anchor, append_anchor, post_anchor, read_anchors
from frvs.oversight.audit import AuditQuery
from frvs.oversight.models import Role
from frvs.oversight.stats import Period

console = output_console()

EXIT_AUDIT_BROKEN = 30
"""``frvs audit verify`` found a changed, removed or reordered entry or index row, or an
anchor the trail no longer holds."""

key_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Read, verify and anchor the audit trail.", no_args_is_help=True)


@contextmanager
def _readable_trail(as_json: bool) -> Iterator[None]:
    """An audit entry whose stored data does not load (JSON that does not parse, changed
    outside FRVS) means a broken trail: a clear message and exit 30, never a traceback."""
    try:
        yield
    except ValueError as exc:
        message = ("the audit trail holds an entry that cannot be read (not valid JSON or an "
                   "unknown value): it was changed outside FRVS; 'frvs audit verify' names it")
        if as_json:
            emit_json({"error": "audit_unreadable", "message": message,
                       "exit_code": EXIT_AUDIT_BROKEN})
        err_console.print(f"[bold red]error[/] (audit_unreadable): {message}", highlight=False)
        raise typer.Exit(EXIT_AUDIT_BROKEN) from exc


def _app(ctx: typer.Context) -> Application:
    app = state(ctx).app
    app.store.open()
    return app


def init(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Create the data directory, the store and the first admin key (shown once).

    Run twice, it refuses (exit 17) rather than mint a second admin key: create further
    keys with 'frvs key create' (audited), revoke a lost one with 'frvs key revoke'.
    """
    with domain_errors(as_json):
        app = state(ctx).app
        app.settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.store.open()
        issued = app.oversight.keys.create_first_admin(caller(app))
    if as_json:
        emit_json({"admin_key": issued.token, "key_id": issued.key.key_id,
                   "data_dir": str(app.settings.data_dir.resolve())})
        return
    console.print(f"FRVS data directory ready: {app.settings.data_dir.resolve()}")
    console.print(f"admin key [bold]{issued.key.key_id}[/]: {issued.token}", highlight=False)
    err_console.print("This key is shown once and stored only as a hash: keep it now. "
                      "Clients send it as 'Authorization: Bearer KEY'.")


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what uses the key.")],
    role: Annotated[Role, typer.Option(help="The key's one role.")],
    holder: Annotated[str | None, typer.Option(
        help="The person the key belongs to (default: NAME). Fixed for the key's life; "
             "the two-person rule counts holders, so give every key of one person the "
             "same holder.")] = None,
    camera: Annotated[list[str] | None, typer.Option(
        help="Device keys: a registered camera the edge node may report for (repeatable); "
             "reports for any other camera are refused.")] = None,
    as_json: bool = JsonOption,
) -> None:
    """Create an API key with one role for one person; its token is printed once."""
    with domain_errors(as_json):
        app = _app(ctx)
        issued = app.oversight.keys.create(caller(app), role, name, holder, camera or ())
    if as_json:
        emit_json(issued.key.as_dict() | {"token": issued.token})
        return
    console.print(f"{issued.key.role.value} key [bold]{issued.key.key_id}[/]: {issued.token}",
                  highlight=False)
    err_console.print("Shown once; FRVS keeps only its hash.")


@key_app.command("list")
def key_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Every key: id, name, role, creation, revocation (never the token)."""
    with domain_errors(as_json):
        keys = _app(ctx).oversight.keys.all()
    if as_json:
        emit_json({"keys": [k.as_dict() for k in keys]})
        return
    table = Table("key id", "name", "role", "created", "by", "revoked", "cameras")
    for k in keys:
        table.add_row(k.key_id, k.name, k.role.value, k.created_at.isoformat(timespec="seconds"),
                      k.created_by,
                      k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-",
                      ", ".join(k.cameras) or "-")
    console.print(table)


@key_app.command("update")
def key_update(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id (k_...), not the token.")],
    name: Annotated[str | None, typer.Option(help="A new label (the holder stays).")] = None,
    camera: Annotated[list[str] | None, typer.Option(
        help="Device keys: bind to these cameras instead (repeatable).")] = None,
    no_cameras: Annotated[bool, typer.Option(
        "--no-cameras", help="Device keys: bind to no camera (it reports for none).")] = False,
    as_json: bool = JsonOption,
) -> None:
    """Rename a key or change the cameras a device key reports for (audited with the
    values before and after)."""
    with domain_errors(as_json):
        if camera and no_cameras:
            raise InvalidInputError("give --camera or --no-cameras, not both")
        cameras = [] if no_cameras else camera or None
        app = _app(ctx)
        key = app.oversight.keys.update(caller(app), key_id, name=name, cameras=cameras)
    if as_json:
        emit_json({"updated": key.as_dict()})
    else:
        bound = f", cameras {', '.join(key.cameras)}" if key.cameras else ""
        console.print(f"{key.role.value} key {key.key_id}: {key.name}{bound}")


@key_app.command("revoke")
def key_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id (k_...), not the token.")],
    as_json: bool = JsonOption,
) -> None:
    """Revoke a key; it is refused from the next request on."""
    with domain_errors(as_json):
        app = _app(ctx)
        key = app.oversight.keys.revoke(caller(app), key_id)
    if as_json:
        emit_json({"revoked": key.as_dict()})
    else:
        console.print(f"revoked {key.role.value} key {key.key_id} ({key.name})")


def _anchors(values: list[str] | None, files: list[Path] | None) -> list[Anchor]:
    anchors = [Anchor.parse(v, f"--anchor {i}") for i, v in enumerate(values or (), start=1)]
    for path in files or ():
        anchors.extend(read_anchors(path))
    return anchors


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    anchor: Annotated[list[str] | None, typer.Option(
        help="SEQ:HASH of an earlier head kept outside the database (repeatable): also "
        "check the trail still holds it (detects a rewritten chain and a cut tail).")] = None,
    anchors: Annotated[list[Path] | None, typer.Option(
        help="A file of anchors written by 'frvs audit checkpoint' (one JSON line each, "
        "repeatable): check every one.", dir_okay=False)] = None,
    as_json: bool = JsonOption,
) -> None:
    """Walk the hash chain and check its base, the subject index and the anchors given;
    exit 30 and list every changed, removed, reordered entry or index row."""
    with domain_errors(as_json), _readable_trail(as_json):
        checked = _anchors(anchor, anchors)
        report = _app(ctx).oversight.trail.verify(checked)
    if as_json:
        emit_json(report.as_dict())
    else:
        status = "[green]intact[/]" if report.ok else "[bold red]TAMPERED[/]"
        console.print(f"audit trail {status}: {report.entries} entries "
                      f"{report.first_seq}..{report.head_seq}, {report.anchors} anchors "
                      f"checked, head {report.head_seq}:{report.head_hash}")
        for p in report.problems:
            console.print(f"  entry {p.seq}: {p.kind.value}: {p.detail}", highlight=False)
        if report.problems_omitted:
            console.print(f"  ... and {report.problems_omitted} more problems")
    if not report.ok:
        raise typer.Exit(EXIT_AUDIT_BROKEN)


@audit_app.command("checkpoint")
def audit_checkpoint(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Option(
        "--file", help="Append the head as one JSON line to this file (created if missing, "
        "fsynced). Keep it where the database's writers cannot reach.", dir_okay=False)
    ] = None,
    url: Annotated[str | None, typer.Option(
        help="POST the head as JSON to this http(s) URL (10 s timeout).")] = None,
    as_json: bool = JsonOption,
) -> None:
    """Write the current head of the audit trail (seq, hash, time) outside the database,
    as an anchor for 'frvs audit verify --anchors FILE'. Refuses (exit 30) when the trail
    does not verify: an anchor vouches for the history before it."""
    with domain_errors(as_json):
        trail = _app(ctx).oversight.trail
        report = trail.verify()
    if not report.ok:
        if as_json:
            emit_json({"checkpoint": None, "verification": report.as_dict()})
        err_console.print(f"the audit trail does not verify ({len(report.problems)} problems; "
                          "see 'frvs audit verify'): no checkpoint written")
        raise typer.Exit(EXIT_AUDIT_BROKEN)
    with domain_errors(as_json):
        head = trail.checkpoint(report)
        if file is not None:
            append_anchor(file, head)
        status = post_anchor(url, head) if url is not None else None
    if as_json:
        emit_json({"checkpoint": head.as_dict(), "file": str(file) if file else None,
                   "url": url, "status": status})
        return
    print(head.line())
    if file is not None:
        err_console.print(f"appended to {file}")
    if url is not None:
        err_console.print(f"posted to {url}: {status}")


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    action: Annotated[str | None, typer.Option(help="Only this action (identify, ...).")] = None,
    subject: Annotated[str | None, typer.Option(help="Only entries naming GALLERY/SUBJECT.")
                       ] = None,
    as_json: bool = JsonOption,
) -> None:
    """The newest entries first."""
    with domain_errors(as_json), _readable_trail(as_json):
        entries = _app(ctx).oversight.trail.page(AuditQuery(limit=limit, action=action,
                                                            subject=subject))
    if as_json:
        emit_json({"entries": [e.as_dict() for e in entries]})
        return
    table = Table("seq", "time", "actor", "action", "case", "purpose", "outcome", "subjects")
    for e in entries:
        table.add_row(str(e.seq), e.at.isoformat(timespec="seconds"), e.actor.label, e.action,
                      e.case_reference or "-", e.purpose or "-", e.outcome,
                      ", ".join(e.subjects[:3]) + (" ..." if len(e.subjects) > 3 else ""))
    console.print(table)


@audit_app.command("purge")
def audit_purge(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Remove entries older than audit.retention_days (at least 183); the purge is audited."""
    with domain_errors(as_json):
        app = _app(ctx)
        removed = app.oversight.trail.purge(caller(app))
    if as_json:
        emit_json({"removed": removed})
    else:
        console.print(f"{removed} audit entries older than {app.settings.audit.retention_days} "
                      "days removed")


def stats(
    ctx: typer.Context,
    period: Annotated[Period, typer.Option(help="Bucket size.")] = Period.DAY,
    days: Annotated[int, typer.Option(min=1, max=3660, help="How far back.")] = 30,
    as_json: bool = JsonOption,
) -> None:
    """Counts per period for oversight: searches by purpose, enrolments, deletions,
    alerts raised/confirmed/dismissed and the share dismissed."""
    with domain_errors(as_json), _readable_trail(as_json):
        until = datetime.now(UTC)
        buckets = _app(ctx).oversight.stats.compute(until - timedelta(days=days), until, period)
    if as_json:
        emit_json({"period": period.value, "buckets": [b.as_dict() for b in buckets]})
        return
    table = Table("from", "searches", "by purpose", "verif.", "enrolled", "deleted", "alerts",
                  "confirmed", "dismissed", "dismissed %")
    for b in buckets:
        share = b.dismissed_share
        table.add_row(b.start.date().isoformat(), str(sum(b.searches.values())),
                      ", ".join(f"{p}: {n}" for p, n in sorted(b.searches.items())) or "-",
                      str(b.verifications), str(b.enrolments), str(b.deletions),
                      str(b.alerts_raised), str(b.alerts_confirmed), str(b.alerts_dismissed),
                      "-" if share is None else f"{100 * share:.1f}")
    console.print(table)


def ensure_admin_key(app: Application) -> str | None:
    """On a first start (no active admin key), create one and return its token; else None.
    Used by ``frvs serve --init`` so ``make run`` works on an empty data directory."""
    app.settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.store.open()
    if app.oversight.keys.has_active_admin():
        return None
    return app.oversight.keys.create_first_admin(caller(app)).token
