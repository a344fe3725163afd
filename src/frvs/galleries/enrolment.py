"""Enrolment: images of a subject (files or uploaded bytes), or a folder tree
``ROOT/<subject>/<images>``.

Each image is its own transaction: the subject if new, the template, the gallery
revision and the image's ``enrol`` audit entry commit together or not at all, so a
crash (kill -9 included) loses at most the image in flight and never leaves a template
without its entry. A re-run resumes: an image whose SHA-256 the subject already has in
the gallery's model space is skipped as a duplicate before any model runs. A face crop
written before the commit is removed again if the transaction does not commit. An
image that is refused (unreadable, no usable face) leaves a ``refused`` entry with its
reason. The index is told after the commit; the store stays the truth.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from frvs.core.caller import AuditContext, AuditDraft, record_refusal, subject_ref
from frvs.core.errors import (
    BusyError,
    FileReadError,
    FrvsError,
    ImageTooLargeError,
    InvalidInputError,
    LowQualityFaceError,
    MultipleFacesError,
    NoFaceError,
)
from frvs.core.templates import ModelSpace
from frvs.core.times import Clock
from frvs.faces.models import EmbeddedFace
from frvs.galleries.models import (
    EnrolOutcome,
    Gallery,
    NewTemplate,
    OutcomeStatus,
    Subject,
    SubjectSpec,
)
from frvs.galleries.ports import FaceAnalyser
from frvs.imaging.budget import DEFAULT_PIXEL_BUDGET, PixelBudget
from frvs.imaging.decode import BGRImage, ImageLimits
from frvs.imaging.encode import ENROLMENT_QUALITY, encode_jpeg
from frvs.models.quality import QualityMinimums, quality_shortfalls
from frvs.storage.database import StoreError
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
SUBJECT_FILE = "subject.json"
"""Optional per-subject file in a folder tree: {"name": ..., "metadata": {...}}."""

OutcomeCallback = Callable[[EnrolOutcome], None]


@dataclass(frozen=True, slots=True)
class EnrolItem:
    """One image to enrol for one subject: a file, or the bytes of an upload (validated
    when enrolled, so a bad subject becomes a refusal in the report rather than aborting
    a whole folder). ``name`` is how an upload is called in reports (its file name)."""

    subject: str
    image: Path | bytes
    display_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None

    @property
    def label(self) -> str:
        if isinstance(self.image, Path):
            return str(self.image)
        return self.name or "upload"


@dataclass(frozen=True, slots=True)
class EnrolContext:
    """What enrolment needs besides the store: models, minimums, limits, clock, and the
    process's pixel budget (every decode of an image and its analysis hold its pixels;
    the composition root passes the one the API shares)."""

    analyser: FaceAnalyser
    minimums: QualityMinimums
    limits: ImageLimits
    clock: Clock
    budget: PixelBudget = field(
        default_factory=lambda: PixelBudget(DEFAULT_PIXEL_BUDGET, wait_s=5.0))


def plan_folder(root: Path) -> list[EnrolItem]:
    """Every image under ``root/<subject>/``, subject id = folder name, sorted."""
    if not root.is_dir():
        raise InvalidInputError(f"{root}: not a folder")
    items: list[EnrolItem] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name, metadata = _subject_file(folder / SUBJECT_FILE)
        images = sorted(p for p in folder.rglob("*")
                        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        items.extend(EnrolItem(folder.name, p, name, metadata) for p in images)
    return items


def _subject_file(path: Path) -> tuple[str | None, dict[str, str]]:
    if not path.is_file():
        return None, {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("metadata", {}), dict):
        raise InvalidInputError(f'{path}: expected {{"name": ..., "metadata": {{...}}}}')
    name = data.get("name")
    return (str(name) if name else None), {str(k): str(v) for k, v in
                                           data.get("metadata", {}).items()}


def choose_face(
    faces: Sequence[EmbeddedFace], minimums: QualityMinimums, name: str
) -> EmbeddedFace:
    """The one face meeting the minimums; otherwise an error naming the reason and image.

    Faces too small or poor to pass (a face in the background) do not count, so a
    portrait with a bystander enrols; two usable faces are refused, because FRVS cannot
    know which one the subject is.
    """
    if not faces:
        raise NoFaceError(f"{name}: no face found")
    usable = [f for f in faces if not quality_shortfalls(f.face.quality, minimums)]
    if len(usable) == 1:
        return usable[0]
    if len(usable) > 1:
        raise MultipleFacesError(
            f"{name}: {len(usable)} faces meet the quality minimums; enrolment needs exactly "
            "one (crop the photo to the subject)"
        )
    reasons = "; ".join(quality_shortfalls(faces[0].face.quality, minimums))
    raise LowQualityFaceError(f"{name}: the face is below the quality minimums: {reasons}")


def image_sha256(data: bytes) -> str:
    """The SHA-256 of an image's bytes: how enrolment recognises an image it has seen and
    how the audit trail names an image it never stores."""
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path, limits: ImageLimits) -> bytes:
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ImageTooLargeError(f"{path}: {size} bytes is more than the limit of "
                                 f"{limits.max_bytes} bytes")
    return path.read_bytes()


class Enroller:
    """Turns images into stored, indexed templates of one gallery, each with its audit
    entry in the same transaction."""

    def __init__(self, store: Store, catalog: IndexCatalog, context: EnrolContext) -> None:
        self._store = store
        self._catalog = catalog
        self._ctx = context

    def enrol(self, caller: AuditContext, gallery: Gallery, items: Sequence[EnrolItem],
              on_outcome: OutcomeCallback | None = None) -> list[EnrolOutcome]:
        """Enrol each item in order; refusals are outcomes (and audit entries), not
        exceptions."""
        space = self._ctx.analyser.packs.info(gallery.pack).space
        outcomes = []
        for item in items:
            outcome = self._one(caller, gallery, space, item)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        return outcomes

    def _one(self, caller: AuditContext, gallery: Gallery, space: ModelSpace,
             item: EnrolItem) -> EnrolOutcome:
        name = item.label
        inputs: dict[str, object] = {"gallery": gallery.name, "subject": item.subject,
                                     "image": name}
        try:
            spec = SubjectSpec(item.subject, item.display_name, item.metadata)
            if isinstance(item.image, Path):
                data = read_bytes(item.image, self._ctx.limits)
                source: str | None = str(item.image.resolve())
            else:
                data, source = item.image, None
            digest = image_sha256(data)
            inputs["image_sha256"] = digest
            with self._store.unit() as uow:
                duplicate = uow.templates.find_duplicate(gallery.id, spec.external_id, space,
                                                         digest)
            if duplicate is not None:
                # Already enrolled, with its entry, by an earlier (maybe killed) run.
                return EnrolOutcome(name, item.subject, OutcomeStatus.DUPLICATE,
                                    template_id=duplicate)
            outcome = self._store_image(caller, gallery, spec, (name, data), (digest, source))
        except StoreError:
            raise  # the store itself failed: no image can be enrolled, stop the batch
        except (FrvsError, OSError) as exc:
            refusal = exc if isinstance(exc, FrvsError) else FileReadError(
                f"{name}: cannot read ({exc.strerror or exc})")
            record_refusal(self._store, caller, "enrol", inputs, refusal,
                           subjects=[subject_ref(gallery.name, item.subject)])
            if isinstance(exc, BusyError):
                # The process is full: the rest would wait and be refused too. The images
                # before it are enrolled (a retry reports them as duplicates).
                raise
            return EnrolOutcome(name, item.subject, OutcomeStatus.REFUSED, refusal.message,
                                refusal.code)
        # store_face names an upload by its digest; the caller knows it by its name.
        return EnrolOutcome(name, outcome.subject, outcome.status, outcome.reason,
                            outcome.error_code, outcome.template_id)

    def reembed(self, caller: AuditContext, gallery: Gallery, subject: Subject,
                source: str | None, digest: str) -> EnrolOutcome:
        """Enrol ``subject``'s source image again into ``gallery`` (whose pack is the new
        one), as ``reindex.template``; refused when the source is gone or changed."""
        name = source or digest[:12]
        refused = OutcomeStatus.REFUSED
        if source is None:
            return EnrolOutcome(name, subject.external_id, refused, "no source image recorded",
                                "not_found")
        try:
            data = read_bytes(Path(source), self._ctx.limits)
        except OSError as exc:
            return EnrolOutcome(name, subject.external_id, refused,
                                f"{name}: cannot read ({exc.strerror or exc})", "file_not_found")
        if image_sha256(data) != digest:
            return EnrolOutcome(name, subject.external_id, refused,
                                f"{name}: the file changed since enrolment", "conflict")
        try:
            return self._store_image(caller, gallery, subject, (name, data), (digest, source),
                                     action="reindex.template")
        except FrvsError as exc:
            return EnrolOutcome(name, subject.external_id, refused, exc.message, exc.code)

    def _store_image(self, caller: AuditContext, gallery: Gallery,
                     spec: SubjectSpec | Subject, named: tuple[str, bytes],
                     origin: tuple[str, str | None], *, action: str = "enrol") -> EnrolOutcome:
        """Decode ``named`` (its name in messages, its bytes) within the pixel budget and
        store its face (``store_face``)."""
        name, data = named
        with self._ctx.budget.decode([(data, name)], self._ctx.limits) as (image,):
            return self.store_face(caller, gallery, spec, image, origin, action=action)

    def store_face(self, caller: AuditContext, gallery: Gallery, spec: SubjectSpec | Subject,
                   image: BGRImage, origin: tuple[str, str | None], *,
                   action: str = "enrol") -> EnrolOutcome:
        """Embed the one usable face of ``image`` and commit it for the subject, with its
        ``action`` audit entry in the same transaction.

        ``origin`` is (SHA-256 of the image bytes, source path or None).
        """
        digest, source = origin
        name = source or digest[:12]
        embedded = choose_face(self._ctx.analyser.analyse(image, gallery.pack),
                               self._ctx.minimums, name)
        template = embedded.template
        crop_path, wrote_crop = self._keep_crop(gallery, spec.external_id, digest, image,
                                                embedded)
        new = NewTemplate(template, embedded.face.quality.overall, digest, source,
                          embedded.face.detection.box, crop_path)
        now = self._ctx.clock()
        ref = subject_ref(gallery.name, spec.external_id)
        try:
            with self._store.unit(write=True) as uow:
                subject = spec if isinstance(spec, Subject) else (
                    uow.subjects.get_or_add(gallery, spec, now))
                template_id = uow.templates.add(subject, new, now)
                if template_id is not None:
                    uow.galleries.bump_revision(gallery.id)
                    uow.audit(caller, AuditDraft(
                        action, {"gallery": gallery.name, "subject": spec.external_id,
                                 "image_sha256": digest, "source": source,
                                 "pack": gallery.pack},
                        {"template_id": template_id,
                         "quality": round(embedded.face.quality.overall, 4),
                         "crop": crop_path is not None}, [ref]))
        except BaseException:
            if wrote_crop and crop_path is not None:  # nothing refers to it: no orphan
                self._store.media.remove([crop_path])
            raise
        if template_id is None:
            return EnrolOutcome(name, spec.external_id, OutcomeStatus.DUPLICATE)
        self._catalog.added(gallery.id, template.space, [template_id],
                            template.vector.reshape(1, -1))
        return EnrolOutcome(name, spec.external_id, OutcomeStatus.ENROLLED,
                            template_id=template_id)

    def _keep_crop(self, gallery: Gallery, external_id: str, digest: str, image: BGRImage,
                   face: EmbeddedFace) -> tuple[str | None, bool]:
        """The crop's path when the gallery keeps crops, and whether this call wrote the
        file (a duplicate's crop is the same file, already referred to)."""
        if not gallery.keep_crops:
            return None, False
        pack = self._ctx.analyser.packs.get(gallery.pack)
        crop = pack.embedder.align(image, face.face.detection)
        relative = self._store.media.crop_path(gallery.id, f"{gallery.pack}/{external_id}",
                                               digest)
        existed = self._store.media.exists(relative)
        self._store.media.write(relative, encode_jpeg(crop, ENROLMENT_QUALITY))
        return relative, not existed
