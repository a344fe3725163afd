"""The face engine's use cases: detect, embed, verify.

Detection and embedding are not biometric identification and are not audited; a 1:1
verification is, with its caller, the digests of both images' pixels and the decision.

Every use case takes decoded pixels or a ``ScaledImage`` (a JPEG decoded at a reduced
DCT scale that is still at least the detector's working size). Faces are found on the
reduced pixels; a face is aligned from them when its 112x112 crop samples them no finer
than one crop pixel per image pixel (the crop then holds all the detail a full-size
decode would give it), else from the image decoded again at full size. Boxes and
landmarks are always in full-image coordinates.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from frvs.core.caller import AuditContext, AuditDraft, AuditLog, record_refusal
from frvs.core.detections import FaceDetection
from frvs.core.errors import NoFaceError
from frvs.core.templates import Template
from frvs.faces.models import EmbeddedFace, Face, ProbeFace, Verification
from frvs.imaging.decode import BGRImage, ScaledImage
from frvs.models.alignment import CANONICAL_LANDMARKS, similarity_transform
from frvs.models.pack import ModelPack
from frvs.models.quality import assess_quality
from frvs.models.registry import PackRegistry
from frvs.models.scaling import detect_at_scale


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How the engine prepares images for detection."""

    max_side: int = 640
    reduced_decode: bool = True
    """Uploads decoded at a reduced DCT scale (``ScaledImage``) and the two images of a
    verification analysed at once; False: full-size decode, one image after the other."""

    @property
    def decode_side(self) -> int:
        """The longer side an upload keeps when decoded at a reduced DCT scale: the
        working size less ``DECODE_SLACK``."""
        return math.ceil(self.max_side * (1.0 - DECODE_SLACK))


DECODE_SLACK = 0.05
"""How far short of the working size a reduced decode may fall. A JPEG whose half scale
comes a few pixels short (1275 px wide: 638 against 640) is decoded at that scale and
enlarged to the working size for the detector (bilinear, under a millisecond), instead of
decoded whole and shrunk: img38 of the pairs 5.7 ms to decode instead of 15, and no 5 ms
area resize. Detected as it was, without the enlargement, a 608 px decode lost two thirds
of 16-20 px faces that a full decode shrunk to 640 finds. Faces too small in the reduced
pixels for a crop without magnification are still aligned from the full image
(``_Sources``)."""


def detect_at_working_size(pack: ModelPack, image: BGRImage, max_side: int, *,
                           reduced: bool = False) -> list[FaceDetection]:
    """Detect on a copy scaled so its longer side is at most ``max_side``; map results back.

    Detectors trained on small inputs (YuNet) miss faces that fill a large image, and
    cost grows with pixels, so large images are shrunk first. ``reduced``: ``image`` is a
    reduced decode that may fall short of ``max_side`` (``DECODE_SLACK``); it is enlarged
    to it, so the detector sees as many pixels as a full decode shrunk would give it.
    """
    scale = max_side / max(image.shape[:2])
    if not reduced:
        scale = min(1.0, scale)
    # Area averaging when shrinking: enrolment's quality gate and the stored templates
    # were measured on it (bilinear, as video frames are shrunk, refused an enrolment
    # photo of the contract tests and moved the dlib pack's calibration).
    return detect_at_scale(pack.detector, image, scale,
                           cv2.INTER_AREA if scale <= 1.0 else cv2.INTER_LINEAR)


Picture = BGRImage | ScaledImage
"""What the engine analyses: decoded pixels, or an image decoded at a reduced scale."""

MAX_REDUCED_CROP_SCALE = 1.0
"""Crop pixels per reduced-image pixel up to which a face is aligned from the reduced
image: at most 1, the crop is a shrink of the reduced pixels and holds every detail its
112x112 pixels can show; above, it would magnify them, and the full image is decoded."""


def crop_scale(face: FaceDetection) -> float:
    """How many aligned-crop pixels one image pixel becomes for ``face`` (the scale of
    the five-point alignment; 112x112 crop)."""
    matrix = similarity_transform(face.landmarks.points.astype(np.float64),
                                  CANONICAL_LANDMARKS)
    return math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))


class _Sources:
    """The pixels of one image the engine works from: the detection image, and for each
    face the image it is aligned from (the full one decoded once, only when needed)."""

    def __init__(self, image: Picture) -> None:
        self.scaled = image if isinstance(image, ScaledImage) else None
        self.pixels = image.pixels if isinstance(image, ScaledImage) else image
        self.factor = image.factor if isinstance(image, ScaledImage) else 1
        self._full: BGRImage | None = None if self.factor > 1 else self.pixels

    def full(self) -> BGRImage:
        if self._full is None:
            assert self.scaled is not None
            self._full = self.scaled.full()
        return self._full

    def for_face(self, face: FaceDetection) -> tuple[BGRImage, FaceDetection]:
        """The image to align ``face`` (full-image coordinates) from, and the face in it."""
        if self.factor == 1:
            return self.pixels, face
        reduced = face.scaled(1.0 / self.factor)
        if crop_scale(reduced) <= MAX_REDUCED_CROP_SCALE:
            return self.pixels, reduced
        return self.full(), face


def pixels_sha256(image: BGRImage) -> str:
    """A digest of decoded pixels: what the audit records of an image it never stores."""
    # The array's own buffer: no copy of a 40 Mpx image (120 MB) just to hash it.
    return hashlib.sha256(np.ascontiguousarray(image).data).hexdigest()


class FaceEngine:
    """Detection, quality, embedding and 1:1 comparison over the configured packs."""

    def __init__(self, packs: PackRegistry, options: EngineOptions, audit: AuditLog) -> None:
        self.packs = packs
        self.options = options
        self._audit = audit

    def detect(self, image: Picture, pack: str | None = None) -> list[Face]:
        """Every face in ``image`` with its quality, largest first."""
        return self._detect(self.packs.get(pack), _Sources(image))

    def embed(
        self, image: Picture, faces: list[Face], pack: str | None = None
    ) -> list[EmbeddedFace]:
        """Templates for ``faces`` of ``image``, made by ``pack``."""
        return self._embed(self.packs.get(pack), _Sources(image), faces)

    def analyse(self, image: Picture, pack: str | None = None) -> list[EmbeddedFace]:
        """Detect, assess and embed every face of ``image``, largest first."""
        p, sources = self.packs.get(pack), _Sources(image)
        return self._embed(p, sources, self._detect(p, sources))

    def probe(self, image: Picture, name: str, pack: str | None = None) -> ProbeFace:
        """The largest face of ``image``, embedded; ``NoFaceError`` when there is none."""
        p, sources = self.packs.get(pack), _Sources(image)
        faces = self._detect(p, sources)
        if not faces:
            raise NoFaceError(f"{name}: no face found")
        (embedded,) = self._embed(p, sources, faces[:1])
        return ProbeFace(name, embedded, len(faces))

    def _detect(self, p: ModelPack, sources: _Sources) -> list[Face]:
        found = detect_at_working_size(p, sources.pixels, self.options.max_side,
                                       reduced=sources.factor > 1)
        detections = [d.scaled(sources.factor) if sources.factor > 1 else d for d in found]
        faces = [Face(d, assess_quality(d, p.embedder.align(*sources.for_face(d))))
                 for d in detections]
        return sorted(faces, key=lambda f: f.detection.box.area, reverse=True)

    def _embed(self, p: ModelPack, sources: _Sources, faces: Sequence[Face]
               ) -> list[EmbeddedFace]:
        # One embedder call per source image (reduced or full), as the faces came.
        placed = [sources.for_face(f.detection) for f in faces]
        templates: dict[int, Template] = {}
        for source in {id(image): image for image, _ in placed}.values():
            mine = [i for i, (image, _) in enumerate(placed) if image is source]
            made = p.embedder.embed(source, [placed[i][1] for i in mine])
            templates.update(zip(mine, made, strict=True))
        return [EmbeddedFace(f, templates[i]) for i, f in enumerate(faces)]

    def _probe_both(self, images: tuple[Picture, Picture], names: tuple[str, str],
                    pack: str) -> tuple[ProbeFace, ProbeFace]:
        if not self.options.reduced_decode:
            return self.probe(images[0], names[0], pack), self.probe(images[1], names[1], pack)
        # At once: decoders and runtimes release the GIL, so one request uses both cores
        # of a small machine. The first image's error wins, as one after the other.
        with ThreadPoolExecutor(1, thread_name_prefix="verify") as other:
            second = other.submit(self.probe, images[1], names[1], pack)
            return self.probe(images[0], names[0], pack), second.result()

    def verify(
        self,
        caller: AuditContext,
        images: tuple[Picture, Picture],
        names: tuple[str, str] = ("a", "b"),
        pack: str | None = None,
        threshold: float | None = None,
    ) -> Verification:
        """Compare the largest face of each image at ``threshold`` (the pack's default);
        audited for ``caller``, refusals (no face) included."""
        inputs = {"pixels_sha256": [pixels_sha256(_Sources(i).pixels) for i in images],
                  "pack": pack, "threshold": threshold}
        try:
            p = self.packs.get(pack)
            a, b = self._probe_both(images, names, p.info.name)
            result = Verification(
                score=a.face.template.similarity(b.face.template),
                threshold=p.info.thresholds.default if threshold is None else threshold,
                pack=p.info.name,
                a=a,
                b=b,
            )
            self._audit.audit(caller, AuditDraft("verify", inputs, {
                "score": round(result.score, 6), "threshold": result.threshold,
                "same": result.same, "pack": result.pack}))
        except Exception as exc:
            record_refusal(self._audit, caller, "verify", inputs, exc)
            raise
        return result
