"""edge: run a camera node that feeds a centre ('frvs edge run'), and read its outbox
('frvs edge status')."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from frvs.cli.context import JsonOption, domain_errors, emit_json, state
from frvs.core.caller import system_caller
from frvs.core.errors import FileReadError, InvalidInputError
from frvs.edge.node import EdgeNode, NodeMatcher, OutboxSink
from frvs.edge.outbox import Outbox, OutboxLimits
from frvs.edge.sender import Backoff, Link, NodeInfo, Sender
from frvs.pipeline.camera import CameraRuntime
from frvs.pipeline.supervisor import Supervisor
from frvs.video.service import CameraSpec
from frvs.video.source_policy import SourceKind, SourceOrigin, SourcePolicy
from frvs.video.sources import SourceOptions

console = Console()
edge_app = typer.Typer(help="A camera node that feeds a centre: run it, read its outbox.",
                       no_args_is_help=True)

EDGE_NODE = system_caller("edge-node")
OUTBOX_FILE = "edge/outbox.db"

DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="The node's data directory (default FRVS_DATA_DIR, else ./data); "
    "its outbox is edge/outbox.db there.")]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("frvs")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def _camera(text: str, fps: float | None) -> CameraSpec:
    name, sep, source = text.partition("=")
    if not sep or not name or not source:
        raise InvalidInputError(f"--camera takes NAME=SOURCE (a registered camera's name at "
                                f"the centre and a local file, folder or stream), got {text!r}")
    return CameraSpec(name=name, source_url=source, sample_fps=fps)


def _outbox_path(ctx: typer.Context, data_dir: Path | None) -> Path:
    root = data_dir or state(ctx).settings.data_dir
    return root / OUTBOX_FILE


@edge_app.command("run")
def run(
    ctx: typer.Context,
    centre: Annotated[str, typer.Option("--centre", envvar="FRVS_CENTRE", help=(
        "The centre's URL (https://...; http only to this machine or with --insecure)."))],
    camera: Annotated[list[str] | None, typer.Option("--camera", help=(
        "NAME=SOURCE: a camera registered at the centre with the source 'edge', and the "
        "local file, folder, rtsp:// URL or /dev/videoN this node reads. Repeatable; none: "
        "only deliver what the outbox holds."))] = None,
    data_dir: DataDirOpt = None,
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help=(
        "Trust only this CA (PEM) for the centre's certificate, instead of the system's."))
    ] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help=(
        "Allow plain http to a centre on another machine (templates travel unencrypted)."))
    ] = False,
    once: Annotated[bool, typer.Option("--once", help=(
        "Exit when every source has ended and the outbox is delivered (files, tests)."))
    ] = False,
    fps: Annotated[float, typer.Option(help="Frames analysed per second per camera.")] = 5.0,
    name: Annotated[str | None, typer.Option(help="The node's name at the centre "
                                             "(default: the host name).")] = None,
    location: Annotated[str | None, typer.Option(help="Where the node is.")] = None,
    max_outbox_mb: Annotated[float, typer.Option(help=(
        "Undelivered data kept, in MiB; beyond it the oldest crops, then the oldest "
        "reports are dropped (counted and reported to the centre)."))] = 512.0,
    max_age_hours: Annotated[float, typer.Option(help=(
        "Undelivered reports older than this are dropped (counted and reported))."))
    ] = 168.0,
    heartbeat_s: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 10.0,
    retry_max_s: Annotated[float, typer.Option(help=(
        "Longest wait between tries while the centre is away (exponential backoff with "
        "jitter up to this)."))] = 30.0,
    as_json: bool = JsonOption,
) -> None:
    """Run local cameras through the analysis pipeline (detection, tracking, best shot,
    template) and deliver each ended track's report to the centre, durably: reports are
    committed to the outbox before they are sent and delivered exactly once however long
    the centre is away. The device key comes from FRVS_DEVICE_KEY; the node holds no
    gallery and never identifies anyone itself."""
    with domain_errors(as_json):
        settings = state(ctx).settings
        root = data_dir or settings.data_dir
        link = Link(centre, os.environ.get("FRVS_DEVICE_KEY", "").strip(), ca_file, insecure)
        link.verify()  # a missing --ca-file fails now, not at the first delivery
        specs = [_camera(c, fps) for c in camera or []]
        policy = SourcePolicy(protected=(root.resolve(),), allow_private=True)
        for spec in specs:  # a refused source or a missing file fails now, with its reason
            checked = policy.check(spec.source_url, SourceOrigin.LOCAL)
            if checked.kind is SourceKind.PATH and not Path(checked.location).exists():
                raise FileReadError(f"camera {spec.name}: {spec.source_url} does not exist")
        if len({s.name for s in specs}) != len(specs):
            raise InvalidInputError("each --camera NAME may be given once")
        limits = OutboxLimits(int(max_outbox_mb * 1024 * 1024), max_age_hours * 3600.0,
                              max(max_age_hours * 3600.0, 86_400.0))
        outbox = Outbox(root / OUTBOX_FILE, limits)
        packs = state(ctx).app.packs
        pack_name = packs.default_name
        space = packs.info(pack_name).space
        known = outbox.meta("cameras")
        names = [s.name for s in specs] or ([str(c) for c in known]
                                            if isinstance(known, list) else [])
        if specs:
            outbox.set_meta("cameras", names)
        sender = Sender(outbox, link, NodeInfo(name or socket.gethostname(), _version(),
                                               space.key, tuple(names), location),
                        backoff=Backoff(min(0.5, retry_max_s), retry_max_s),
                        heartbeat_s=heartbeat_s)
        supervisor = Supervisor(packs, NodeMatcher(pack_name), OutboxSink(outbox))
        # Sources named on the node's own command line (policy above): cameras on its
        # local network are what a node is for; its data directory stays out of reach.
        runtime = CameraRuntime(processor=settings.video.processor(), caller=EDGE_NODE,
                                source=SourceOptions(policy=policy, origin=SourceOrigin.LOCAL))
        node = EdgeNode(outbox, sender, supervisor, specs, runtime)

        def _stop(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            node.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        result = node.run(once)
        status = outbox.status()
        outbox.close()
    summary = {"event": "summary", "made": result.made, "delivered": result.delivered,
               "refused": result.refused, "backlog": result.backlog,
               "last_error": status.last_error}
    if as_json:
        emit_json(summary)
    else:
        console.print(summary)
    if result.refused:
        raise typer.Exit(2)


@edge_app.command("status")
def status(ctx: typer.Context, data_dir: DataDirOpt = None,
           as_json: bool = JsonOption) -> None:
    """The node's outbox: cameras, backlog (count, bytes, oldest), last contact with the
    centre, deliveries, retries, drops and refusals."""
    with domain_errors(as_json):
        path = _outbox_path(ctx, data_dir)
        if not path.is_file():
            raise InvalidInputError(f"no outbox at {path}: has 'frvs edge run' run with "
                                    "this data directory?")
        outbox = Outbox(path)
        document = outbox.status().as_dict()
        outbox.close()
    if as_json:
        emit_json(document)
        return
    for key, value in document.items():
        console.print(f"{key:>16}: {value}", highlight=False)
