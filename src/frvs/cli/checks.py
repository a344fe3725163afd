"""``frvs check``: an identity check of a document photo against a live capture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from frvs.app import Application
from frvs.checks.models import LiveFrame, parse_challenge
from frvs.cli.context import JsonOption, domain_errors, emit_json, state, who
from frvs.core.caller import Role
from frvs.core.errors import ImageTooLargeError, InvalidInputError, PermissionDeniedError
from frvs.imaging.decode import BGRImage, read_image
from frvs.video.source_policy import SourceOrigin
from frvs.video.sources import SourceOptions, open_source

console = Console()

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


class _CapturePixels:
    """The pixels a capture holds, bounded like the API's uploads: each frame by
    ``image_limits.max_pixels`` and all of them by the process's pixel budget (60
    frames of a large video would otherwise be held at once, 6 GB at 8K)."""

    def __init__(self, app: Application) -> None:
        self._max = app.image_limits.max_pixels
        self._budget = app.pixel_budget.capacity
        self._total = 0

    def admit(self, image: BGRImage, what: str) -> BGRImage:
        height, width = image.shape[:2]
        pixels = height * width
        if pixels > self._max:
            raise ImageTooLargeError(f"{what}: {width}x{height} is more than the limit of "
                                     f"{self._max} pixels")
        self._total += pixels
        if self._total > self._budget:
            raise ImageTooLargeError(
                f"live capture: more than the pixel budget of {self._budget} pixels "
                f"(limits.max_concurrent_pixels) at {width}x{height}; lower --fps or "
                "the video's resolution")
        return image


def read_capture(app: Application, live: list[Path], fps: float) -> list[LiveFrame]:
    """The live frames: image files in capture order, ``1/fps`` seconds apart, or one
    video file sampled at ``fps`` (FFmpeg's timestamps), at most ``max_frames``, and at
    most the pixel budget in all."""
    limit = app.checks.policy.max_frames
    held = _CapturePixels(app)
    if len(live) == 1 and live[0].suffix.lower() not in IMAGE_SUFFIXES:
        path = live[0]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        source = open_source(str(path), "check", SourceOptions(origin=SourceOrigin.LOCAL))
        frames: list[LiveFrame] = []
        due = [0.0]  # the next sampling time, read by the source's due test
        try:
            while (frame := source.read(lambda t: t >= due[0])) is not None:
                if len(frames) == limit:
                    raise InvalidInputError(
                        f"{path}: more than {limit} frames at {fps:g} fps; trim the video "
                        "or lower --fps")
                shown = f"{path}@{frame.timestamp:.2f}s"
                frames.append(LiveFrame(held.admit(frame.image, shown), frame.timestamp,
                                        shown))
                due[0] = frame.timestamp + 1.0 / fps
        finally:
            source.close()
        start = frames[0].time_s if frames else 0.0
        return [LiveFrame(f.image, f.time_s - start, f.name) for f in frames]
    if len(live) > limit:
        raise InvalidInputError(f"too many frames: {len(live)}, at most {limit}")
    return [LiveFrame(held.admit(read_image(p, app.image_limits), str(p)), i / fps, str(p))
            for i, p in enumerate(live)]


def check(
    ctx: typer.Context,
    document: Annotated[Path, typer.Argument(help="The identity document: a scan or a photo "
                                             "of the page with the portrait.")],
    live: Annotated[list[Path], typer.Argument(
        help="The live capture: image files in capture order, or one short video file.")],
    challenge: Annotated[str, typer.Option(
        help="The moves the customer was asked for, in their own left and right "
        "(as told 'turn your head to your left'): left, right, up, down.")] = "left,right",
    purpose: Annotated[str | None, typer.Option(
        help="Why the check is made (audited); default: checks.purpose or FRVS_PURPOSE.")
    ] = None,
    fps: Annotated[float, typer.Option(
        min=0.5, max=60, help="Frames per second: the spacing of image files, the "
        "sampling of a video.")] = 5.0,
    as_json: bool = JsonOption,
) -> None:
    """Identity check: does the live face match the document's portrait, and did a live
    head follow the challenge? Only digests and the decision are kept (unless the
    deployment keeps images). A key in FRVS_API_KEY must be a verifier's (or admin's)."""
    with domain_errors(as_json):  # an invalid configuration too: a message, no traceback
        app = state(ctx).app
        caller = who(ctx, with_key=True)
        role = caller.actor.role
        if caller.actor.key_id is not None and role not in (Role.VERIFIER, Role.ADMIN):
            raise PermissionDeniedError(f"keys of role {role} may not run identity checks "
                                        "(allowed: verifier, admin)")
        moves = parse_challenge(challenge)
        doc = read_image(document, app.image_limits)
        frames = read_capture(app, live, fps)
        result = app.checks.run(caller, doc, frames, moves, purpose=purpose)
    if as_json:
        emit_json(result.as_dict())
        return
    verdict = "[green]verified[/]" if result.passed else "[red]not verified[/]"
    point = result.operating_point
    console.print(f"{verdict}: face {'matches' if result.match else 'does not match'} the "
                  f"document (score {result.score:.3f}, threshold {point.threshold:.3f} "
                  f"for FMR {point.target_fmr:g}{'' if point.calibrated else ', uncalibrated'})")
    live_state = "passed" if result.liveness.passed else "failed"
    console.print(f"liveness {live_state}; moves seen: "
                  f"{', '.join(m.value for m in result.liveness.moves_seen) or 'none'}")
    for reason in result.liveness.reasons:
        console.print(f"  - {reason}")
    if result.document is not None:
        console.print(f"document portrait: {result.document.note}")
    for note in result.notes:
        console.print(f"note: {note}")
    kept = (f"the images until {result.kept.images_until:%Y-%m-%d}" if result.kept.images_until
            else "digests and the decision only")
    console.print(f"check {result.id}; kept: {kept}")
