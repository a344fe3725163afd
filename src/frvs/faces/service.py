"""The face engine's use cases: detect, embed, verify.

Detection and embedding are not biometric identification and are not audited; a 1:1
verification is, with its caller, the digests of both images' pixels and the decision.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

from frvs.core.caller import AuditContext, AuditDraft, AuditLog, record_refusal
from frvs.core.detections import FaceDetection
from frvs.core.errors import NoFaceError
from frvs.faces.models import EmbeddedFace, Face, ProbeFace, Verification
from frvs.imaging.decode import BGRImage
from frvs.models.pack import ModelPack
from frvs.models.quality import assess_quality
from frvs.models.registry import PackRegistry
from frvs.models.scaling import detect_at_scale


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How the engine prepares images for detection."""

    max_side: int = 640


def detect_at_working_size(pack: ModelPack, image: BGRImage, max_side: int) -> list[FaceDetection]:
    """Detect on a copy scaled so its longer side is at most ``max_side``; map results back.

    Detectors trained on small inputs (YuNet) miss faces that fill a large image, and
    cost grows with pixels, so large images are shrunk first.
    """
    scale = min(1.0, max_side / max(image.shape[:2]))
    return detect_at_scale(pack.detector, image, scale, cv2.INTER_AREA)


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

    def detect(self, image: BGRImage, pack: str | None = None) -> list[Face]:
        """Every face in ``image`` with its quality, largest first."""
        p = self.packs.get(pack)
        detections = detect_at_working_size(p, image, self.options.max_side)
        faces = [Face(d, assess_quality(d, p.embedder.align(image, d))) for d in detections]
        return sorted(faces, key=lambda f: f.detection.box.area, reverse=True)

    def embed(
        self, image: BGRImage, faces: list[Face], pack: str | None = None
    ) -> list[EmbeddedFace]:
        """Templates for ``faces`` of ``image``, made by ``pack``."""
        p = self.packs.get(pack)
        templates = p.embedder.embed(image, [f.detection for f in faces])
        return [EmbeddedFace(f, t) for f, t in zip(faces, templates, strict=True)]

    def analyse(self, image: BGRImage, pack: str | None = None) -> list[EmbeddedFace]:
        """Detect, assess and embed every face of ``image``, largest first."""
        return self.embed(image, self.detect(image, pack), pack)

    def probe(self, image: BGRImage, name: str, pack: str | None = None) -> ProbeFace:
        """The largest face of ``image``, embedded; ``NoFaceError`` when there is none."""
        faces = self.detect(image, pack)
        if not faces:
            raise NoFaceError(f"{name}: no face found")
        (embedded,) = self.embed(image, faces[:1], pack)
        return ProbeFace(name, embedded, len(faces))

    def verify(
        self,
        caller: AuditContext,
        images: tuple[BGRImage, BGRImage],
        names: tuple[str, str] = ("a", "b"),
        pack: str | None = None,
        threshold: float | None = None,
    ) -> Verification:
        """Compare the largest face of each image at ``threshold`` (the pack's default);
        audited for ``caller``, refusals (no face) included."""
        inputs = {"pixels_sha256": [pixels_sha256(i) for i in images], "pack": pack,
                  "threshold": threshold}
        try:
            p = self.packs.get(pack)
            a = self.probe(images[0], names[0], p.info.name)
            b = self.probe(images[1], names[1], p.info.name)
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
