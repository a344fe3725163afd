"""The identity check use case: the customer's live face, with a head-movement challenge,
against the portrait on their identity document.

One check = one audited operation for its caller (the verifier), in the same
transaction as its row: verifier, purpose and decision on the trail, and in the store
only the digests of the images and the decision. The images themselves are kept only
when the deployment turns ``checks.keep_images`` on, as files removed after
``checks.image_retention_days`` (``purge_expired``). A refused check (no face in the
document, too few frames, ...) is audited as a refusal with its reason.

The operating point: ``checks.target_fmr`` (default 1e-3) names the false match rate
the deployment declares; its threshold is the pack's calibrated threshold for that FMR
(``thresholds.<pack>.by_fmr`` in the configuration: ``frvs calibrate PAIRS --target-fmr F
--write CONFIG.yaml`` measures it on the deployer's own labelled pairs with
``evaluation/calibration.py`` and ``config/thresholds_file.py`` writes it; the pack
registry applies it). Without one, the pack's default threshold is used and the result
says ``calibrated: false`` (for the shipped pack, SFace's published operating point
0.363, chosen on LFW), unless ``checks.require_calibrated`` refuses such checks. (The
galleries' calibration, ``galleries/calibration.py``, is for 1:N searches, FPIR, and
has no say here.)
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from frvs.checks import liveness
from frvs.checks.models import (
    CheckPolicy,
    CheckResult,
    DocumentPortrait,
    FramePose,
    IssuedChallenge,
    Kept,
    LiveFrame,
    Move,
    OperatingPoint,
)
from frvs.checks.repository import CheckRepository, StoredChallenge, StoredCheck
from frvs.core.caller import AuditContext, AuditDraft, Role, record_refusal
from frvs.core.errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    MultipleFacesError,
    NoFaceError,
    NotFoundError,
)
from frvs.core.templates import Template
from frvs.core.times import Clock
from frvs.faces.models import EmbeddedFace
from frvs.faces.service import FaceEngine, pixels_sha256
from frvs.imaging.decode import BGRImage
from frvs.imaging.encode import encode_jpeg
from frvs.models.quality import FaceQuality, estimate_pose
from frvs.storage.store import Store

logger = logging.getLogger(__name__)

ACTION = "identity_check"
MEDIA_FOLDER = "checks"
ORPHAN_GRACE = timedelta(hours=1)
"""Kept-image folders no row names are swept once older than this: far longer than a
check takes from writing its images to its commit."""



def capture_digest(frames: Sequence[LiveFrame]) -> str:
    """SHA-256 over the frames' pixel digests in capture order: one digest of the capture."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(pixels_sha256(frame.image).encode("ascii"))
    return h.hexdigest()


class IdentityChecks:
    """Run identity checks, and let each verifier read their own."""

    def __init__(self, engine: FaceEngine, store: Store, policy: CheckPolicy,
                 clock: Clock) -> None:
        self._engine = engine
        self._store = store
        self.policy = policy
        self._clock = clock

    def operating_point(self, pack: str | None = None) -> OperatingPoint:
        """The threshold for the declared FMR, and where it comes from."""
        name = pack or self._engine.packs.default_name
        thresholds = self._engine.packs.info(name).thresholds
        fmr = self.policy.target_fmr
        calibrated = thresholds.for_fmr(fmr)
        if calibrated is not None:
            return OperatingPoint(name, fmr, calibrated, True, thresholds.source)
        if self.policy.require_calibrated:
            raise ConfigurationError(
                f"identity checks need a threshold calibrated for FMR {fmr:g} on pack "
                f"{name}: run 'frvs calibrate PAIRS.csv --target-fmr {fmr:g} --write "
                "CONFIG.yaml' on your own labelled pairs, or set checks.require_calibrated "
                "to false")
        return OperatingPoint(
            name, fmr, thresholds.default, False,
            f"not calibrated for FMR {fmr:g} on this deployment: the pack's default "
            f"threshold is used ({thresholds.source})")

    def random_challenge(self) -> tuple[Move, ...]:
        """A random sequence of ``challenge_length`` moves, no move twice in a row."""
        moves: list[Move] = []
        while len(moves) < self.policy.challenge_length:
            options = [m for m in self.policy.moves if not moves or m is not moves[-1]]
            moves.append(secrets.choice(options))
        return tuple(moves)

    def issue_challenge(self, caller: AuditContext) -> IssuedChallenge:
        """A random challenge for ``caller``'s next check, answerable once, by them,
        within ``time_limit_s + challenge_slack_s`` by the server's clock."""
        moves = self.random_challenge()
        now = self._clock()
        until = now + timedelta(seconds=self.policy.time_limit_s + self.policy.challenge_slack_s)
        issued = IssuedChallenge(uuid.uuid4().hex, moves, now, until)
        with self._store.unit(write=True) as uow:
            # Challenges long expired are of no use to anyone: cleared as new ones come.
            checks = uow.repo(CheckRepository)
            checks.drop_challenges(now - timedelta(days=1))
            checks.add_challenge(StoredChallenge(
                id=issued.id, actor=caller.actor.label, holder=caller.actor.person,
                moves=",".join(m.value for m in moves), issued_at=now, expires_at=until))
        return issued

    def _issued(self, caller: AuditContext, challenge_id: str,
                challenge: Sequence[Move]) -> tuple[Move, ...]:
        """The moves of the issued challenge ``challenge_id``, if ``caller`` may answer it
        now; a clear refusal otherwise."""
        with self._store.unit() as uow:
            row = uow.repo(CheckRepository).challenge(challenge_id)
            if row is None or not (row.actor == caller.actor.label or (
                    caller.actor.person is not None and row.holder == caller.actor.person)):
                raise InvalidInputError(f"challenge {challenge_id!r} was not issued to you; "
                                        "ask for one (POST /v1/checks/challenges)")
            if row.used_at is not None:
                raise ConflictError(f"challenge {challenge_id!r} was already answered; each "
                                    "challenge is answered once")
            if self._clock() > row.expires_at:
                raise InvalidInputError(
                    f"challenge {challenge_id!r} expired at {row.expires_at.isoformat()}: "
                    f"the capture must arrive within {self.policy.time_limit_s:g} s + "
                    f"{self.policy.challenge_slack_s:g} s of the challenge")
            moves = tuple(Move(m) for m in row.moves.split(","))
        if challenge and tuple(challenge) != moves:
            raise InvalidInputError(
                f"challenge: {', '.join(m.value for m in challenge)} is not the challenge "
                f"issued ({', '.join(m.value for m in moves)})")
        return moves

    def run(self, caller: AuditContext, document: BGRImage, frames: Sequence[LiveFrame],
            challenge: Sequence[Move], *, purpose: str | None = None,
            pack: str | None = None, challenge_id: str | None = None) -> CheckResult:
        """Check ``frames`` (in capture order) against the portrait of ``document``;
        audited for ``caller`` with the purpose and the decision, refusals included.
        With ``challenge_id``, the moves are those of that issued challenge, which this
        check uses up."""
        purpose = (purpose or caller.purpose or self.policy.purpose).strip()[:500]
        caller = replace(caller, purpose=purpose)
        digests = (pixels_sha256(document), capture_digest(frames))
        inputs: dict[str, object] = {
            "purpose": purpose, "challenge": [m.value for m in challenge],
            "challenge_id": challenge_id, "frames": len(frames),
            "document_sha256": digests[0], "capture_sha256": digests[1]}
        try:
            if challenge_id is not None:
                challenge = self._issued(caller, challenge_id, challenge)
            result, row = self._check(caller, document, frames, challenge, purpose=purpose,
                                      pack=pack, digests=digests)
            self._record(caller, row, inputs, document, frames, challenge_id=challenge_id)
        except Exception as exc:
            record_refusal(self._store, caller, ACTION, inputs, exc)
            raise
        return result

    def _check(self, caller: AuditContext, document: BGRImage, frames: Sequence[LiveFrame],
               challenge: Sequence[Move], *, purpose: str, pack: str | None,
               digests: tuple[str, str]) -> tuple[CheckResult, StoredCheck]:
        policy = self.policy
        if not challenge:
            raise InvalidInputError("a check needs a challenge of one or more moves "
                                    "(left, right, up, down), e.g. left,right")
        if len(frames) < policy.min_frames:
            raise InvalidInputError(
                f"too few frames: the live capture has {len(frames)}, a check needs at "
                f"least {policy.min_frames} (about a second of video per move)")
        if len(frames) > policy.max_frames:
            raise InvalidInputError(f"too many frames: {len(frames)}, at most "
                                    f"{policy.max_frames} (sample the video more sparsely)")
        if any(b.time_s < a.time_s for a, b in itertools.pairwise(frames)):
            raise InvalidInputError("frame times must not go backwards (frames are in "
                                    "capture order)")
        point = self.operating_point(pack)
        portrait, doc_face = self._document(document, point.pack)
        poses, templates, qualities = self._live(frames, point.pack)
        # The document is compared with the live frame of best quality (the most frontal
        # and sharp one): a turned head compares worse and says nothing more. Liveness
        # then asks that every frame be that same face.
        best = int(np.argmax([q.overall for q in qualities]))
        result_live = liveness.judge(
            poses, templates, len(frames), challenge, threshold=point.threshold,
            turn_deg=policy.turn_deg, nod_deg=policy.nod_deg,
            time_limit_s=policy.time_limit_s, still_motion=policy.still_motion,
            matched=best, same_face_min=policy.same_face_min)
        score = doc_face.template.similarity(templates[best])
        notes = []
        if len(poses) < len(frames):
            notes.append(f"{len(frames) - len(poses)} of {len(frames)} frames showed no face")
        if not point.calibrated:
            notes.append(f"threshold not calibrated for FMR {point.target_fmr:g}")
        now = self._clock()
        check_id = uuid.uuid4().hex
        keep = policy.keep_images
        until = now + timedelta(days=policy.image_retention_days) if keep else None
        media = f"{MEDIA_FOLDER}/{check_id}" if keep else None
        result = CheckResult(
            id=check_id, at=now, verifier=caller.actor.label, purpose=purpose,
            match=score >= point.threshold, score=score, operating_point=point,
            liveness=result_live, document=portrait, live_quality=qualities[best],
            document_sha256=digests[0], capture_sha256=digests[1],
            kept=Kept(keep, until, media), contact=policy.contact, notes=tuple(notes))
        actor = caller.actor
        row = StoredCheck(
            id=check_id, at=now, actor=actor.label, key_id=actor.key_id, holder=actor.person,
            purpose=purpose, challenge=",".join(m.value for m in challenge),
            frames=len(frames), document_sha256=result.document_sha256,
            capture_sha256=result.capture_sha256, pack=point.pack,
            target_fmr=point.target_fmr, threshold=point.threshold,
            calibrated=point.calibrated, score=score, match=result.match,
            liveness_passed=result_live.passed, liveness_reasons=tuple(result_live.reasons),
            passed=result.passed, images_kept=keep, images_until=until, media_path=media)
        return result, row

    def _record(self, caller: AuditContext, row: StoredCheck, inputs: dict[str, object],
                document: BGRImage, frames: Sequence[LiveFrame], *,
                challenge_id: str | None) -> None:
        if row.media_path is None:
            self._commit(caller, row, inputs, challenge_id=challenge_id)
            return
        # Written before the row commits: a crash leaves files no row names (swept by
        # purge_expired), never a row naming missing files. A refused commit (a
        # challenge answered twice at once) removes them at once.
        try:
            self._store.media.write(f"{row.media_path}/document.jpg", encode_jpeg(document))
            for i, frame in enumerate(frames):
                self._store.media.write(f"{row.media_path}/frame-{i:03d}.jpg",
                                        encode_jpeg(frame.image))
            self._commit(caller, row, inputs, challenge_id=challenge_id)
        except BaseException:
            self._store.media.remove_folder(row.media_path)
            raise

    def _commit(self, caller: AuditContext, row: StoredCheck,
                inputs: dict[str, object], *, challenge_id: str | None) -> None:
        with self._store.unit(write=True) as uow:
            if challenge_id is not None:
                # Used up in the check's own transaction, by a conditional update: of two
                # checks answering one challenge at once, exactly one commits; and only
                # while it has not expired by the check's own time (it may have expired
                # while the check ran, after it was first read).
                checks = uow.repo(CheckRepository)
                if not checks.use_challenge(challenge_id, row.at):
                    issued = checks.challenge(challenge_id)
                    if issued is not None and issued.used_at is None:
                        raise InvalidInputError(
                            f"challenge {challenge_id!r} expired at "
                            f"{issued.expires_at.isoformat()}, before the check was done")
                    raise ConflictError(f"challenge {challenge_id!r} was already answered")
            uow.repo(CheckRepository).add(row)
            uow.audit(caller, AuditDraft(ACTION, inputs, {
                "check": row.id, "decision": "verified" if row.passed else "not verified",
                "match": row.match, "score": round(row.score, 6), "threshold": row.threshold,
                "target_fmr": row.target_fmr, "calibrated": row.calibrated,
                "liveness_passed": row.liveness_passed,
                "liveness_reasons": list(row.liveness_reasons),
                "images_kept": row.images_kept,
                "images_until": row.images_until.isoformat() if row.images_until else None}))

    def _document(self, image: BGRImage, pack: str) -> tuple[DocumentPortrait, EmbeddedFace]:
        """The document's main portrait: the largest face. A second, clearly smaller face
        is the document's ghost copy of the portrait (or a stamp, a hologram) and is left
        out; two faces of similar size are refused, since either could be the portrait."""
        faces = self._engine.detect(image, pack)
        if not faces:
            raise NoFaceError("document: no face found; photograph or scan the page with "
                              "the portrait, flat and in focus")
        main = faces[0]
        note = "the only face found"
        if len(faces) > 1:
            ratio = faces[1].detection.box.area / max(main.detection.box.area, 1.0)
            if ratio > self.policy.ghost_max_ratio:
                raise MultipleFacesError(
                    f"document: {len(faces)} faces, the second {ratio:.0%} of the size of "
                    "the largest; cannot tell which is the portrait (photograph the "
                    "document alone)")
            note = (f"the largest of {len(faces)} faces; the others (at most {ratio:.0%} of "
                    "its area) are taken as the document's smaller ghost portrait")
        (embedded,) = self._engine.embed(image, [main], pack)
        return DocumentPortrait(len(faces), main.quality, main.detection.box.as_list(),
                                note), embedded

    def _live(self, frames: Sequence[LiveFrame], pack: str
              ) -> tuple[list[FramePose], list[Template], list[FaceQuality]]:
        poses: list[FramePose] = []
        templates: list[Template] = []
        qualities: list[FaceQuality] = []
        sign = -1.0 if self.policy.mirrored_capture else 1.0
        for index, frame in enumerate(frames):
            faces = self._engine.detect(frame.image, pack)
            if not faces:
                continue
            (face,) = self._engine.embed(frame.image, faces[:1], pack)
            d = face.face.detection
            pose = estimate_pose(d)
            points = d.landmarks.points
            if sign < 0:  # mirror the geometry too, so "moved" and "turned" stay consistent
                points = np.column_stack([-points[:, 0], points[:, 1]])
            poses.append(FramePose(
                index=index, time_s=frame.time_s, yaw=sign * pose.yaw, pitch=pose.pitch,
                roll=sign * pose.roll, centre=(d.box.x + d.box.w / 2, d.box.y + d.box.h / 2),
                eye_px=d.landmarks.inter_eye_distance,
                landmarks=tuple((float(x), float(y)) for x, y in points)))
            templates.append(face.template)
            qualities.append(face.face.quality)
        if not poses:
            raise NoFaceError(f"live capture: no face in any of the {len(frames)} frames; "
                              "the customer must face the camera")
        if len(poses) < self.policy.min_frames:
            raise InvalidInputError(
                f"too few frames with a face: {len(poses)} of {len(frames)}, a check needs "
                f"at least {self.policy.min_frames}; keep the face in view")
        return poses, templates, qualities

    def get(self, caller: AuditContext, check_id: str) -> dict[str, object]:
        """One of the caller's own checks (an admin's: any); NotFound otherwise, so a
        verifier cannot learn whether another's check exists."""
        with self._store.unit() as uow:
            row = uow.repo(CheckRepository).get(check_id)
            if row is None or not self._owns(caller, row):
                raise NotFoundError(f"no identity check {check_id!r} of yours")
            return self.record(row)

    def mine(self, caller: AuditContext, limit: int = 50) -> list[dict[str, object]]:
        """The caller's own checks, newest first (an admin's: everyone's)."""
        actor = caller.actor
        everyone = actor.role is Role.ADMIN
        with self._store.unit() as uow:
            found = uow.repo(CheckRepository).newest(
                limit, actor=None if everyone else actor.label,
                holder=None if everyone else actor.person)
        return [self.record(r) for r in found]

    @staticmethod
    def _owns(caller: AuditContext, row: StoredCheck) -> bool:
        actor = caller.actor
        return (actor.role is Role.ADMIN or row.actor == actor.label
                or (actor.person is not None and row.holder == actor.person))

    def record(self, row: StoredCheck) -> dict[str, object]:
        """A stored check as the API, the CLI and the receipt show it: what was checked,
        the result, what was kept and for how long, and who to ask."""
        kept = Kept(row.images_kept and row.media_path is not None, row.images_until)
        return {
            "id": row.id, "at": row.at.isoformat(), "verifier": row.actor,
            "purpose": row.purpose, "challenge": row.challenge.split(","),
            "frames": row.frames, "passed": row.passed,
            "decision": "verified" if row.passed else "not verified",
            "match": row.match, "score": round(row.score, 6), "threshold": row.threshold,
            "operating_point": {"pack": row.pack, "target_fmr": row.target_fmr,
                                "threshold": row.threshold, "calibrated": row.calibrated},
            "liveness": {"passed": row.liveness_passed,
                         "reasons": list(row.liveness_reasons)},
            "digests": {"document_sha256": row.document_sha256,
                        "capture_sha256": row.capture_sha256},
            "kept": kept.as_dict(), "contact": self.policy.contact,
        }

    def purge_expired(self, caller: AuditContext) -> int:
        """Delete the kept images of checks past ``images_until`` (audited with the
        count); their rows stay, with the digests and the decision."""
        now = self._clock()
        with self._store.unit(write=True) as uow:
            folders = uow.repo(CheckRepository).forget_images(now)
            if folders:
                uow.audit(caller, AuditDraft(f"{ACTION}_purge", {"now": now.isoformat()},
                                             {"checks": len(folders)}))
        for folder in folders:
            self._store.media.remove_folder(folder)
        self._sweep_orphans(caller, now)
        return len(folders)

    def _sweep_orphans(self, caller: AuditContext, now: datetime) -> int:
        """Remove kept-image folders no row names, left by a crash between writing the
        images and the check's commit, or between a purge's commit and its deletion.
        Only folders older than ``ORPHAN_GRACE`` (a check in flight may be about to
        commit a younger one). Audited with the count when any were removed."""
        with self._store.unit() as uow:
            named = uow.repo(CheckRepository).media_paths()
        cutoff = (now - ORPHAN_GRACE).timestamp()
        removed = self._store.media.sweep_folders(MEDIA_FOLDER, named, cutoff)
        if removed:
            with self._store.unit(write=True) as uow:
                uow.audit(caller, AuditDraft(
                    f"{ACTION}_purge", {"now": now.isoformat(), "orphans": True},
                    {"folders": removed}))
        return removed
