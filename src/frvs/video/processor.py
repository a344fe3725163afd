"""One camera's analysis: frames in, track decisions and sightings out.

detect (at a working scale) -> track (ByteTrack) -> quality per face -> best shots per
track -> an identity attempt (embed + match) at most every ``attempt_interval``
seconds while the track's budget lasts -> a decision per gallery when the fused score
holds -> a sighting when the track ends. The processor is owned by one thread and
holds no locks; embedding goes through ``EmbedFn`` so several cameras can share a
batching embedder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

from frvs.core.detections import FaceDetection
from frvs.core.geometry import Box
from frvs.core.templates import Template
from frvs.imaging.decode import BGRImage
from frvs.models.pack import ModelPack
from frvs.models.ports import GriddedDetector
from frvs.models.quality import assess_quality
from frvs.models.scaling import detect_at_scale, interpolation_for, resize_for_detection
from frvs.video.bestshot import BestShots, ShotPolicy
from frvs.video.identity import Fused, IdentityPolicy, TrackIdentity
from frvs.video.models import Frame, Shot, Sighting, TrackDecision
from frvs.video.ports import Matcher
from frvs.video.sweep import Sighted, Sweeper, SweepPolicy, Window, crop
from frvs.video.tracking import FaceTracker, SceneChange, TrackerOptions

logger = logging.getLogger(__name__)

@runtime_checkable
class AlignedEmbedder(Protocol):
    """An embedder that also takes already aligned crops, in one batch (SFace)."""

    def align(self, image: BGRImage, face: FaceDetection) -> BGRImage: ...

    def embed_aligned(self, crops: Sequence[BGRImage]) -> list[Template]: ...


EmbedFn = Callable[[Sequence[Shot]], list[Template]]
"""Templates for shots, in order (the pack's embedder, or a shared batcher)."""


@dataclass(frozen=True, slots=True)
class DetectionScale:
    """The scale frames are detected at.

    Frames whose shorter side is below ``min_short_side`` are enlarged first: YuNet's
    smallest anchors are about 10 px, so faces of distant people in a 360p stream are
    found only in an enlarged copy; enlarging costs detection time with the pixel
    count. Frames whose longer side exceeds ``max_long_side`` are shrunk, and the cap
    also bounds the enlargement: 960 detects a 720p camera at 0.75x and enlarges 360p
    1.5x. A face must have eyes 9 px apart in the frame (about 20 px wide) to be
    embedded at all; at 0.75x it is still 15 px at detection scale, above YuNet's
    smallest anchors, so the cap loses no face that could be identified while saving
    about a quarter of the CPU per 720p frame (benchmarks/video.py). Raise it to find
    faces too small to identify (sightings only), at detection time with the pixels.
    """

    min_short_side: int = 720
    max_long_side: int = 960

    def factor(self, height: int, width: int) -> float:
        up = max(1.0, self.min_short_side / max(1, min(height, width)))
        return min(up, self.max_long_side / max(1, height, width))


@dataclass(frozen=True, slots=True)
class ProcessorOptions:
    """Everything a camera's analysis is configured with."""

    galleries: tuple[str, ...]
    detection: DetectionScale = field(default_factory=DetectionScale)
    sweep: SweepPolicy = field(default_factory=SweepPolicy)
    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    shots: ShotPolicy = field(default_factory=ShotPolicy)
    identity: IdentityPolicy = field(default_factory=IdentityPolicy)
    roi: Box | None = None
    top: int = 5
    min_track_frames: int = 2
    patch_margin: float = 0.4
    scene_change: float = 22.0


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one frame produced."""

    decisions: tuple[TrackDecision, ...] = ()
    sightings: tuple[Sighting, ...] = ()


def detect_scaled(pack: ModelPack, image: BGRImage, scale: DetectionScale) -> list[FaceDetection]:
    """Faces of ``image`` found at the working scale, in ``image`` coordinates."""
    h, w = image.shape[:2]
    f = _snap(scale.factor(h, w))
    return detect_at_scale(pack.detector, image, f, interpolation_for(f))


def detect_in_windows(pack: ModelPack, image: BGRImage, scale: DetectionScale,
                      windows: Sequence[Window], *, face_px: float,
                      grid: int) -> list[FaceDetection]:
    """Faces found inside ``windows`` of ``image``, in ``image`` coordinates, each window
    at the working scale or less (``Window.factor``); each face is reported by the window
    its centre lies in.

    A window at the working scale is cut from the frame resized as a sweep resizes it,
    with its corner on the detector's coarsest ``grid``: it then holds the very pixels a
    sweep would see there, in the same cells of every stride, so a face inside it is found
    as a sweep finds it (only context beyond the window differs). Small faces need that:
    their identity scores sit near the threshold, and landmarks a pixel off change them.
    Moving the corner back onto the grid can make windows overlap again; keeping only
    faces centred in their own window reports each face once.
    """
    h, w = image.shape[:2]
    frame_factor = _snap(scale.factor(h, w))
    found: list[FaceDetection] = []
    resized: BGRImage | None = None
    for window in windows:
        f = _snap(window.factor(frame_factor, face_px))
        if f != frame_factor:
            faces = [face.shifted(window.x0, window.y0)
                     for face in detect_at_scale(pack.detector, crop(image, window), f,
                                                 interpolation_for(f))]
        else:
            if resized is None:
                resized = resize_for_detection(image, f, interpolation_for(f))
            x0, y0 = (int(v * f) // grid * grid for v in (window.x0, window.y0))
            x1, y1 = int(np.ceil(window.x1 * f)), int(np.ceil(window.y1 * f))
            on_grid = Window(x0, y0, x1, y1, window.face * f)
            faces = [face.shifted(x0, y0).scaled(1.0 / f)
                     for face in pack.detector.detect(crop(resized, on_grid))]
        found += [face for face in faces if window.holds(face.box)]
    return found


def _snap(factor: float) -> float:
    return 1.0 if abs(factor - 1.0) < 1e-3 else factor


def cut_patch(image: BGRImage, face: FaceDetection,
              margin: float) -> tuple[BGRImage, FaceDetection]:
    """The face with ``margin`` x its size around it, and the detection moved into it."""
    h, w = image.shape[:2]
    b = face.box
    x0 = int(max(0, np.floor(b.x - margin * b.w)))
    y0 = int(max(0, np.floor(b.y - margin * b.h)))
    x1 = int(min(w, np.ceil(b.x + b.w * (1 + margin))))
    y1 = int(min(h, np.ceil(b.y + b.h * (1 + margin))))
    patch = np.ascontiguousarray(image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)])
    return patch, face.shifted(-x0, -y0)


def _inside(box: Box, roi: Box) -> bool:
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return roi.x <= cx <= roi.x + roi.w and roi.y <= cy <= roi.y + roi.h


class _Track:
    """Per-track state, dropped when the track ends."""

    def __init__(self, frame: Frame, policy: ShotPolicy, identity: IdentityPolicy) -> None:
        self.first = frame
        self.last = frame
        self.frames = 0
        self.shots = BestShots(policy.keep)
        self.identity = TrackIdentity(identity)
        self.last_attempt: float | None = None
        self.decisions: dict[str, TrackDecision] = {}


class TrackProcessor:
    """Analysis of one camera's frames; not thread-safe (one owner thread)."""

    def __init__(self, camera: str, pack: ModelPack, matcher: Matcher,
                 options: ProcessorOptions, embed: EmbedFn | None = None) -> None:
        self.camera = camera
        self._pack = pack
        self._matcher = matcher
        self._o = options
        self._embed = embed or (lambda shots: embed_shots(pack, shots))
        self._tracker = FaceTracker(options.tracker)
        self._scene = SceneChange(options.scene_change)
        self._sweeper = Sweeper(options.sweep)
        self._sighted: dict[int, Sighted] = {}
        self._unconfirmed: list[Sighted] = []
        self._tracks: dict[int, _Track] = {}
        self.embeddings = 0

    def process(self, frame: Frame) -> StepResult:
        """Analyse one (sampled) frame."""
        closed: list[Sighting] = []
        if self._scene.changed(frame.image):
            closed = list(self.finish().sightings)
        faces = self._detect(frame.image, frame.timestamp)
        if self._o.roi is not None:
            roi = self._o.roi
            faces = [f for f in faces if _inside(f.box, roi)]
        step = self._tracker.update(faces)
        self._remember(faces, step.faces, step.ended)
        for track_id, face in step.faces:
            self._observe(frame, track_id, face)
        decisions = self._attempt(frame, [t for t, _ in step.faces])
        sightings = self._close_all(step.ended)
        return StepResult(tuple(decisions), tuple(closed + sightings))

    def finish(self) -> StepResult:
        """The source ended: close every live track."""
        self._sweeper.restart()
        self._sighted.clear()
        self._unconfirmed.clear()
        return StepResult((), tuple(self._close_all(self._tracker.finish())))

    def _detect(self, image: BGRImage, timestamp: float) -> list[FaceDetection]:
        """The whole frame when a sweep is due (or the detector has no grid), else the
        windows around tracked faces and faces the tracker has yet to confirm."""
        detector = self._pack.detector
        if not isinstance(detector, GriddedDetector) or self._sweeper.due(timestamp):
            return detect_scaled(self._pack, image, self._o.detection)
        if not self._sighted and not self._unconfirmed:
            return []
        h, w = image.shape[:2]
        windows = self._sweeper.windows([*self._sighted.values(), *self._unconfirmed], h, w)
        return detect_in_windows(self._pack, image, self._o.detection, windows,
                                 face_px=self._o.sweep.face_px, grid=detector.grid)

    def _remember(self, faces: Sequence[FaceDetection],
                  found: Sequence[tuple[int, FaceDetection]], ended: Sequence[int]) -> None:
        """Where each live track's face was last found, and the faces of this frame no
        reported track holds (a track ByteTrack has yet to confirm), for the next
        frame's windows."""
        seen = dict(found)
        for track_id in ended:
            self._sighted.pop(track_id, None)
        for track_id, s in list(self._sighted.items()):
            if track_id not in seen:
                self._sighted[track_id] = Sighted(s.box, s.missed + 1)
        for track_id, face in seen.items():
            self._sighted[track_id] = Sighted(face.box)
        held = {id(face) for face in seen.values()}
        self._unconfirmed = [Sighted(f.box) for f in faces if id(f) not in held]

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)

    def _observe(self, frame: Frame, track_id: int, face: FaceDetection) -> None:
        track = self._tracks.get(track_id)
        if track is None:
            track = self._tracks[track_id] = _Track(frame, self._o.shots, self._o.identity)
        track.last = frame
        track.frames += 1
        aligned = self._pack.embedder.align(frame.image, face)
        quality = assess_quality(face, aligned)
        patch, local = cut_patch(frame.image, face, self._o.patch_margin)
        shot = Shot(track_id, frame.index, frame.timestamp, frame.captured_at, face, quality,
                    patch, local, self._o.shots.weight(quality))
        track.shots.offer(shot, self._o.shots.eligible(quality))

    def _due(self, track: _Track, now: float) -> bool:
        pending = track.shots.pending
        if pending is None or len(track.decisions) == len(self._o.galleries):
            return False
        if not track.identity.wants(pending.quality.inter_eye_px):
            return False
        interval = self._o.identity.attempt_interval
        return track.last_attempt is None or now - track.last_attempt >= interval - 1e-6

    def _attempt(self, frame: Frame, seen: list[int]) -> list[TrackDecision]:
        """Embed and match the due tracks' pending shots in one batch."""
        due: list[tuple[int, Shot]] = []
        for track_id in seen:
            track = self._tracks[track_id]
            if self._due(track, frame.timestamp):
                shot = track.shots.take_pending()
                if shot is not None:
                    due.append((track_id, shot))
                    track.last_attempt = frame.timestamp
        if not due:
            return []
        templates = self._embed([s for _, s in due])
        self.embeddings += len(templates)
        candidates = self._matcher.match(templates, self._o.galleries, self._o.top)
        decisions: list[TrackDecision] = []
        for (track_id, shot), template, cands in zip(due, templates, candidates, strict=True):
            track = self._tracks[track_id]
            track.shots.replace(replace(shot, template=template))
            for fused in track.identity.add(shot.weight, shot.quality.inter_eye_px, cands):
                decision = self._decision(track_id, track, fused, frame)
                track.decisions[fused.gallery] = decision
                decisions.append(decision)
        return decisions

    def _decision(self, track_id: int, track: _Track, fused: Fused, frame: Frame) -> TrackDecision:
        best = track.shots.best
        assert best is not None  # a track with an attempt has shots
        return TrackDecision(
            camera=self.camera, track_id=track_id, gallery=fused.gallery,
            gallery_kind=fused.gallery_kind, subject=fused.subject, score=fused.score,
            threshold=fused.threshold, attempts=track.identity.attempts,
            timestamp=frame.timestamp, captured_at=frame.captured_at, best_shot=best,
        )

    def _close_all(self, track_ids: Sequence[int]) -> list[Sighting]:
        """Sightings of ended tracks; best shots never embedded go in one batch."""
        gain = self._o.shots.reembed_gain
        closing = [(t, track, shot) for t in track_ids
                   if (track := self._tracks.pop(t, None)) is not None
                   and (shot := track.shots.for_sighting(gain)) is not None
                   and (track.frames >= self._o.min_track_frames or track.decisions)]
        bare = [shot for _, _, shot in closing if shot.template is None]
        templates = dict(zip((id(s) for s in bare), self._embed(bare) if bare else [],
                             strict=True))
        self.embeddings += len(templates)
        sightings = []
        for track_id, track, shot in closing:
            best_shot = shot if shot.template is not None else replace(
                shot, template=templates[id(shot)])
            sightings.append(self._sighting(track_id, track, best_shot))
        return sightings

    def _sighting(self, track_id: int, track: _Track, best_shot: Shot) -> Sighting:
        fused = track.identity.best()
        matched = max(track.decisions.values(), key=lambda d: d.score, default=None)
        return Sighting(
            camera=self.camera, track_id=track_id,
            first_seen=track.first.captured_at, last_seen=track.last.captured_at,
            first_time=track.first.timestamp, last_time=track.last.timestamp,
            frames=track.frames, best_shot=best_shot,
            best=fused.candidate() if fused else None, matched=matched,
            attempts=track.identity.attempts,
        )


def embed_shots(pack: ModelPack, shots: Sequence[Shot]) -> list[Template]:
    """Templates for ``shots`` with ``pack``: one batch when the embedder takes aligned
    crops (SFace), else one call per shot."""
    if not shots:
        return []
    embedder = pack.embedder
    if isinstance(embedder, AlignedEmbedder):
        return embedder.embed_aligned([embedder.align(s.patch, s.patch_detection)
                                       for s in shots])
    out: list[Template] = []
    for s in shots:
        out.extend(embedder.embed(s.patch, [s.patch_detection]))
    return out
