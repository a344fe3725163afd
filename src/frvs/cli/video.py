"""watch, camera, sightings, alerts and attendance: the video services from the shell."""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from frvs.alerts.models import AlertRule, AlertStatus, Verdict
from frvs.attendance.service import report_csv
from frvs.cli.context import JsonOption, domain_errors, emit_json, output_console, state, who
from frvs.core.errors import InvalidInputError, PermissionDeniedError
from frvs.pipeline.events import VideoEvent
from frvs.video.models import CameraRole
from frvs.video.service import CameraSpec
from frvs.video.source_policy import SourceKind, SourceOrigin, SourcePolicy, SourceRefusedError
from frvs.video.sources import SourceError, SourceOptions, check_local, open_source

console = output_console()
camera_app = typer.Typer(help="Cameras: add, list, remove, status.", no_args_is_help=True)
alerts_app = typer.Typer(help="Watch-list alerts: list and review.", no_args_is_help=True)
attendance_app = typer.Typer(help="Attendance from entry/exit cameras.", no_args_is_help=True)

GalleryOpt = Annotated[list[str] | None, typer.Option("--gallery", "-g",
                       help="Gallery to match against (repeat for several).")]
RoleOpt = Annotated[CameraRole, typer.Option(help="general, entry or exit (attendance).")]
FpsOpt = Annotated[float | None, typer.Option("--fps", help="Frames analysed per second "
                   "(default 5); 0 analyses every frame.")]


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(f"--since {value!r} is not an ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _print_event(event: VideoEvent, as_json: bool) -> None:
    if as_json:
        emit_json(event.document())
        return
    d = event.detail
    # Names are data, never Rich markup ('[new]' or '[bold]' in a name is printed as is).
    if event.event == "alert":
        console.print(Text.assemble(("ALERT", "bold red"), f" {event.subject} on {event.camera} "
                      f"score {d['score']} (gallery {d['gallery']}, alert {d['id']})"))
    elif event.event == "attendance":
        console.print(Text.assemble((str(d["direction"]), "cyan"),
                                    f" {event.subject} at {d['at']}"))
    else:
        who = event.subject or "unknown"
        console.print(Text(f"sighting {who} on {event.camera}: {d['first_seen']} - "
                           f"{d['last_seen']} ({d['frames']} frames)"))


def _print_table(columns: list[str], rows: list[dict[str, object]]) -> None:
    """Rows as a table, every value as plain text ("-" for none)."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*(Text("-" if row.get(c) is None else str(row[c])) for c in columns))
    console.print(table)


def watch(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Video file, rtsp:// or http(s):// URL, "
                                               "/dev/videoN or a folder of images.")],
    camera: Annotated[str | None, typer.Option(help="Camera name (a registered camera "
                                               "lends its galleries, role and rate).")] = None,
    gallery: GalleryOpt = None,
    role: Annotated[CameraRole | None, typer.Option(help="general, entry or exit.")] = None,
    fps: FpsOpt = None,
    as_json: bool = JsonOption,
) -> None:
    """Watch one source until it ends (or Ctrl-C): one line per alert, sighting and
    attendance event, then a summary."""
    app = state(ctx).app
    with domain_errors(as_json):
        app.store.open()
        video = app.video
        known = video.cameras.find(camera) if camera else None
        galleries = tuple(gallery or (known.galleries if known else ()))
        if not galleries:
            raise InvalidInputError("give --gallery (or a registered --camera with galleries)")
        rate = fps if fps is not None else (known.sample_fps if known else 5.0)
        spec = CameraSpec(
            name=camera or "watch", source_url=source, galleries=galleries,
            role=role or (known.role if known else CameraRole.GENERAL),
            sample_fps=rate or None, roi=known.roi if known else None,
            retention_days=known.retention_days if known else 7,
            keep_crops=known.keep_crops if known else False)
        runner = who(ctx)
        # Before any work: a refused source fails with its reason (exit 22), a missing
        # or unreadable file, folder or device with exit 9. Checked again when opened.
        check_local(source, spec.name, video.runtime(runner).source, opened=True)
        video.router.listen(lambda e: _print_event(e, as_json))
        started = time.monotonic()
        # The same alert sinks (webhooks, MQTT) as 'frvs serve', built by its factory.
        status = video.watch(spec, runner)
        elapsed = time.monotonic() - started
        counts = video.router.counts
        summary = {"event": "summary", "camera": spec.name, "seconds": round(elapsed, 2),
                   "frames_read": status.frames_read, "frames_processed": status.frames_processed,
                   "processed_fps": round(status.frames_processed / max(elapsed, 1e-6), 2),
                   "skipped": status.skipped, "dropped": status.dropped,
                   "alerts": counts.alerts,
                   "sightings": counts.sightings, "attendance": counts.attendance,
                   "suppressed_alerts": video.alerts.suppressed,
                   "health": status.health.value, "last_error": status.last_error}
    if as_json:
        emit_json(summary)
    else:
        _print_table(["what", "value"], [{"what": k, "value": v} for k, v in summary.items()
                                         if k != "event"])


def _roi(text: str) -> tuple[float, float, float, float]:
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise InvalidInputError(f"--roi is x,y,w,h in pixels, got {text!r}")
    return parts[0], parts[1], parts[2], parts[3]


def _source_found(policy: SourcePolicy, source: str, camera: str) -> str:
    """What was checked of a new source, said in words: a file, folder or device exists
    and is readable (``FileReadError``, exit 9, otherwise); a stream URL parses and its
    host resolves (it is not opened: it may be down now and up later). A source the
    policy refuses is left to ``CameraService`` (which audits the refusal)."""
    try:
        checked = check_local(source, camera, SourceOptions(policy=policy,
                                                           origin=SourceOrigin.LOCAL))
    except SourceRefusedError:
        return "source refused"
    if checked.kind is SourceKind.STREAM:
        return f"{checked.scheme} URL parsed and its host resolves (not opened yet)"
    if checked.kind is SourceKind.EDGE:
        return "fed by an edge node ('frvs edge run' with a device key bound to it)"
    kind = "device" if checked.kind is SourceKind.DEVICE else (
        "folder" if Path(checked.location).is_dir() else "file")
    return f"{kind} {checked.location} exists and is readable"


@camera_app.command("add")
def camera_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Camera name.")],
    source: Annotated[str, typer.Argument(help="Source URL, device, folder or file.")],
    gallery: GalleryOpt = None,
    role: RoleOpt = CameraRole.GENERAL,
    location: Annotated[str | None, typer.Option(help="Where the camera is.")] = None,
    fps: FpsOpt = None,
    roi: Annotated[str | None, typer.Option(help="Region of interest 'x,y,w,h' in px.")] = None,
    retention_days: Annotated[int, typer.Option(help="How long sightings are kept.")] = 7,
    keep_crops: Annotated[bool, typer.Option(help="Store each sighting's face crop.")] = False,
    as_json: bool = JsonOption,
) -> None:
    """Register a camera; 'frvs serve' runs it in the background (a running service
    starts it at once). A file, folder or device must exist (exit 9 otherwise); a URL
    must parse and its host resolve."""
    with domain_errors(as_json):
        box = _roi(roi) if roi else None
        spec = CameraSpec(name, source, tuple(gallery or ()), role, location,
                          5.0 if fps is None else (fps or None), box, retention_days,
                          keep_crops)
        app = state(ctx).app
        found = _source_found(app.video.sources, source, name)
        app.video.cameras.add(who(ctx), spec)
    if as_json:
        emit_json(spec.as_dict())
    else:
        console.print(f"camera {name} added; {found}", highlight=False, markup=False)


@camera_app.command("update")
def camera_update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Camera name.")],
    source: Annotated[str | None, typer.Option("--source", help="New source URL.")] = None,
    gallery: GalleryOpt = None,
    no_galleries: Annotated[bool, typer.Option(
        "--no-galleries", help="Match against no gallery; the camera then does not run "
        "until it is given one.")] = False,
    role: Annotated[CameraRole | None, typer.Option(
        help="general, entry or exit (attendance).")] = None,
    location: Annotated[str | None, typer.Option(help="Where the camera is.")] = None,
    fps: Annotated[float | None, typer.Option(
        "--fps", help="New frames analysed per second; 0 analyses every frame.")] = None,
    roi: Annotated[str | None, typer.Option(help="Region of interest 'x,y,w,h' in px.")] = None,
    no_roi: Annotated[bool, typer.Option("--no-roi", help="Analyse the whole frame.")] = False,
    retention_days: Annotated[int | None, typer.Option(
        help="How long sightings are kept.")] = None,
    keep_crops: Annotated[bool | None, typer.Option(
        "--keep-crops/--no-keep-crops", help="Store each sighting's face crop, or not.",
        show_default=False)] = None,
    enabled: Annotated[bool | None, typer.Option(
        "--enable/--disable", help="Run it with 'frvs serve', or not.", show_default=False)
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """Change a registered camera; what is not given stays. A running 'frvs serve'
    restarts the camera with the change at once."""
    with domain_errors(as_json):
        changes: dict[str, object] = {k: v for k, v in {
            "source_url": source, "role": role, "location": location,
            "retention_days": retention_days, "keep_crops": keep_crops,
            "enabled": enabled}.items() if v is not None}
        if (gallery and no_galleries) or (roi and no_roi):
            raise InvalidInputError("a value and its clearing option (--no-galleries, "
                                    "--no-roi) contradict each other")
        if gallery or no_galleries:
            changes["galleries"] = tuple(gallery or ())
        if fps is not None:
            changes["sample_fps"] = fps or None
        if roi or no_roi:
            changes["roi"] = _roi(roi) if roi else None
        if not changes:
            raise InvalidInputError("nothing to change: give at least one option "
                                    "(see frvs camera update --help)")
        app = state(ctx).app
        if source is not None:
            _source_found(app.video.sources, source, name)
        spec = app.video.cameras.update(who(ctx), name, changes)
    if as_json:
        emit_json(spec.as_dict())
    else:
        console.print(f"camera {name} updated: " + ", ".join(changes))


@camera_app.command("list")
def camera_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The registered cameras."""
    with domain_errors(as_json):
        cameras = [c.as_dict() for c in state(ctx).app.video.cameras.all()]
    if as_json:
        emit_json({"cameras": cameras})
        return
    table = Table("name", "role", "source", "galleries", "fps", "retention")
    for c in cameras:
        table.add_row(str(c["name"]), str(c["role"]), str(c["source"]), str(c["galleries"]),
                      str(c["sample_fps"]), f"{c['retention_days']} d")
    console.print(table)


@camera_app.command("remove")
def camera_remove(ctx: typer.Context, name: str, as_json: bool = JsonOption) -> None:
    """Unregister a camera (its sightings stay until they expire)."""
    with domain_errors(as_json):
        spec = state(ctx).app.video.cameras.remove(who(ctx), name)
    if as_json:
        emit_json({"removed": spec.name})
    else:
        console.print(f"camera {name} removed")


@camera_app.command("status")
def camera_status(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(
        "--url", envvar="FRVS_URL",
        help="Ask the running service at this address (e.g. http://127.0.0.1:8000) how its "
        "cameras are doing, with the API key in FRVS_API_KEY (operator or reviewer). "
        "Without it, each registered camera's source is opened and read once here.")
    ] = None,
    as_json: bool = JsonOption,
) -> None:
    """How the cameras are doing: live figures from a running service (--url), or a probe
    of each registered camera's source."""
    with domain_errors(as_json):
        rows = (_service_status(url, os.environ.get("FRVS_API_KEY")) if url
                else _probe_sources(ctx))
    if as_json:
        emit_json({"cameras": rows})
        return
    columns = (["camera", "health", "input_fps", "processed_fps", "dropped", "lag_seconds",
                "reconnects", "last_error"] if url else
               ["camera", "health", "input_fps", "size", "probe_seconds", "last_error"])
    table = Table(*columns)
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row[c]) for c in columns))
    console.print(table)


def _probe_sources(ctx: typer.Context) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    video = state(ctx).app.video
    # Probed by the machine's user, under the deployment's source policy.
    options = SourceOptions(read_timeout=5.0, policy=video.sources, origin=SourceOrigin.LOCAL)
    for spec in video.cameras.all():
        started = time.monotonic()
        try:
            src = open_source(spec.source_url, spec.name, options)
            try:
                frame = src.read()
                size = None if frame is None else list(frame.image.shape[1::-1])
                fps = src.nominal_fps
            finally:
                src.close()
            rows.append({"camera": spec.name, "health": "online", "input_fps": fps,
                         "size": size, "probe_seconds": round(time.monotonic() - started, 2)})
        except SourceError as exc:
            rows.append({"camera": spec.name, "health": "offline", "last_error": exc.message})
    return rows


def _service_status(url: str, key: str | None) -> list[dict[str, object]]:
    """GET /v1/cameras/status of a running service (the standard library is enough)."""
    if not key:
        raise InvalidInputError("--url needs an API key (operator or reviewer) in FRVS_API_KEY")
    address = url.rstrip("/") + "/v1/cameras/status"
    if not address.startswith(("http://", "https://")):
        raise InvalidInputError(f"--url must be an http(s) address, got {url!r}")
    request = urllib.request.Request(address, headers={"Authorization": f"Bearer {key}",
                                                       "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # scheme checked above
            rows: list[dict[str, object]] = json.loads(response.read())
            return rows
    except urllib.error.HTTPError as exc:
        detail = exc.reason
        with contextlib.suppress(ValueError):
            detail = json.loads(exc.read()).get("detail", detail)
        if exc.code in (401, 403):
            raise PermissionDeniedError(f"the service at {url} refused the key: {detail}") from exc
        raise InvalidInputError(f"the service at {url} answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InvalidInputError(f"cannot reach the FRVS service at {url}: {reason}") from exc


def sightings(
    ctx: typer.Context,
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time; sightings seen since.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 1000,
    as_json: bool = JsonOption,
) -> None:
    """Past sightings (one per track), oldest first."""
    with domain_errors(as_json):
        found = state(ctx).app.video.sightings.list(who(ctx, with_key=True), camera,
                                                   _since(since), limit)
    if as_json:
        emit_json({"sightings": [s.as_dict() for s in found]})
        return
    _print_table(["id", "camera", "first_seen", "last_seen", "frames", "subject", "score",
                  "gallery", "expires_at"], [s.as_dict() for s in found])


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    status: Annotated[AlertStatus | None, typer.Option(help="new, confirmed, dismissed.")] = None,
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time.")] = None,
    as_json: bool = JsonOption,
) -> None:
    """Alerts, newest first."""
    with domain_errors(as_json):
        # Undecided alerts show only the viewer's own review (none without a key).
        viewer = who(ctx, with_key=True).actor.person
        found = [a.seen_by(viewer)
                 for a in state(ctx).app.video.alerts.list(status, camera, _since(since))]
    if as_json:
        emit_json({"alerts": [a.as_dict() for a in found]})
        return
    _print_table(["id", "status", "subject", "gallery", "camera", "at", "score", "reviews"],
                 [{"id": a.id, "status": a.status.value, "subject": a.subject,
                   "gallery": a.gallery, "camera": a.camera, "at": a.at.isoformat(),
                   "score": f"{a.score:.3f}", "reviews": len(a.reviews)} for a in found])


@alerts_app.command("rule")
def alerts_rule(
    ctx: typer.Context,
    gallery: Annotated[str, typer.Argument(help="Gallery name.")],
    two_person: Annotated[bool | None, typer.Option(
        "--two-person/--one-person",
        help="Two different people must confirm (always on for watch lists).")] = None,
    suppress_seconds: Annotated[int | None, typer.Option(
        min=0, max=30 * 86_400,
        help="No second alert for the same person on the same camera within this many "
             "seconds.")] = None,
    as_json: bool = JsonOption,
) -> None:
    """Show a gallery's alert rule, or change it (audited) with the options."""
    with domain_errors(as_json):
        alerts = state(ctx).app.video.alerts
        rule = alerts.rule(gallery)
        if two_person is not None or suppress_seconds is not None:
            rule = alerts.set_rule(who(ctx), AlertRule(
                gallery, rule.two_person if two_person is None else two_person,
                rule.suppress_seconds if suppress_seconds is None else suppress_seconds))
    if as_json:
        emit_json(rule.as_dict())
    else:
        people = "two people confirm" if rule.two_person else "one person confirms"
        console.print(f"{gallery}: {people}; repeats suppressed for {rule.suppress_seconds} s",
                      highlight=False)


@alerts_app.command("review")
def alerts_review(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(min=1, max=2**62, help="Alert id.")],
    verdict: Annotated[Verdict, typer.Argument(help="confirm or dismiss.")],
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    as_json: bool = JsonOption,
) -> None:
    """Confirm or dismiss an alert as the person holding the reviewer key in
    FRVS_API_KEY (a watch-list alert needs two different people to confirm it; keys of
    one holder count once)."""
    with domain_errors(as_json):
        app = state(ctx).app
        # The service refuses (and audits) a caller without a reviewer key.
        alert = app.video.alerts.review(who(ctx, with_key=True), alert_id, verdict, note)
    if as_json:
        emit_json(alert.as_dict())
    else:
        console.print(f"alert {alert.id} is {alert.status.value}")


@attendance_app.command("report")
def attendance_report(
    ctx: typer.Context,
    day: Annotated[str, typer.Option("--day", "--date",
                                     help="YYYY-MM-DD (UTC); the API's 'day'.")],
    gallery: Annotated[str | None, typer.Option(help="Only this gallery.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    as_json: bool = JsonOption,
) -> None:
    """Per subject: first in, last out and time present on a day."""
    with domain_errors(as_json):
        try:
            parsed = date.fromisoformat(day)
        except ValueError as exc:
            raise InvalidInputError(f"--day {day!r} is not YYYY-MM-DD") from exc
        # An unknown gallery is an error (exit 16), not an empty report.
        lines = state(ctx).app.video.attendance.report(parsed, gallery)
    if as_csv:
        typer.echo(report_csv(lines), nl=False)
    elif as_json:  # the API's document (GET /v1/attendance)
        emit_json({"day": parsed.isoformat(), "gallery": gallery,
                   "lines": [line.as_dict() for line in lines]})
    else:
        _print_table(["subject", "name", "first_in", "last_out", "present_seconds",
                      "entries", "exits"], [line.as_dict() for line in lines])
