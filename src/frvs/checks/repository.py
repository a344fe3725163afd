"""The identity checks' repository: the only code that turns check and challenge rows
into records and back (reached as ``uow.repo(CheckRepository)``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from frvs.checks.tables import IdentityChallengeRow, IdentityCheckRow


@dataclass(frozen=True, slots=True)
class StoredCheck:
    """A check as stored: its decision and the digests of what was compared (never a
    template, a landmark or a picture; kept images are files under ``media_path``)."""

    id: str
    at: datetime
    actor: str
    key_id: str | None
    holder: str | None
    purpose: str
    challenge: str
    frames: int
    document_sha256: str
    capture_sha256: str
    pack: str
    target_fmr: float
    threshold: float
    calibrated: bool
    score: float
    match: bool
    liveness_passed: bool
    liveness_reasons: tuple[str, ...]
    passed: bool
    images_kept: bool
    images_until: datetime | None
    media_path: str | None


@dataclass(frozen=True, slots=True)
class StoredChallenge:
    """A challenge issued to a verifier; ``used_at`` once a check answered it."""

    id: str
    actor: str
    holder: str | None
    moves: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


def _check(row: IdentityCheckRow) -> StoredCheck:
    return StoredCheck(
        row.id, row.at, row.actor, row.key_id, row.holder, row.purpose, row.challenge,
        row.frames, row.document_sha256, row.capture_sha256, row.pack, row.target_fmr,
        row.threshold, row.calibrated, row.score, row.match, row.liveness_passed,
        tuple(row.liveness_reasons), row.passed, row.images_kept, row.images_until,
        row.media_path)


class CheckRepository:
    """Identity checks and the challenges issued for them."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, check: StoredCheck) -> None:
        values = asdict(check)
        values["liveness_reasons"] = list(check.liveness_reasons)
        self._s.add(IdentityCheckRow(**values))

    def get(self, check_id: str) -> StoredCheck | None:
        row = self._s.get(IdentityCheckRow, check_id)
        return None if row is None else _check(row)

    def newest(self, limit: int, *, actor: str | None = None,
               holder: str | None = None) -> list[StoredCheck]:
        """Checks newest first: all of them, or those run by ``actor`` or ``holder``
        when either is given."""
        query = select(IdentityCheckRow).order_by(IdentityCheckRow.at.desc())
        if actor is not None:
            mine = IdentityCheckRow.actor == actor
            if holder is not None:
                mine = or_(mine, IdentityCheckRow.holder == holder)
            query = query.where(mine)
        return [_check(r) for r in self._s.scalars(query.limit(limit))]

    def forget_images(self, now: datetime) -> list[str]:
        """Clear the kept-image folders of checks past ``images_until``: the folders, for
        the caller to remove once this commits (the rows stay)."""
        rows = list(self._s.scalars(select(IdentityCheckRow).where(
            IdentityCheckRow.images_until <= now, IdentityCheckRow.media_path.is_not(None))))
        folders = [r.media_path for r in rows if r.media_path]
        for row in rows:
            row.media_path = None
        return folders

    def media_paths(self) -> set[str]:
        """Every kept-image folder a check names."""
        return {p for p in self._s.scalars(select(IdentityCheckRow.media_path).where(
            IdentityCheckRow.media_path.is_not(None))) if p}

    def add_challenge(self, challenge: StoredChallenge) -> None:
        self._s.add(IdentityChallengeRow(**asdict(challenge)))

    def drop_challenges(self, expired_before: datetime) -> None:
        self._s.execute(delete(IdentityChallengeRow).where(
            IdentityChallengeRow.expires_at < expired_before))

    def challenge(self, challenge_id: str) -> StoredChallenge | None:
        row = self._s.get(IdentityChallengeRow, challenge_id)
        return None if row is None else StoredChallenge(
            row.id, row.actor, row.holder, row.moves, row.issued_at, row.expires_at,
            row.used_at)

    def use_challenge(self, challenge_id: str, at: datetime) -> bool:
        """Mark the challenge answered at ``at`` if it is unanswered and not expired by
        then, with one conditional update (of two checks answering it at once, exactly
        one succeeds): whether it was."""
        used = self._s.execute(update(IdentityChallengeRow).where(
            IdentityChallengeRow.id == challenge_id, IdentityChallengeRow.used_at.is_(None),
            IdentityChallengeRow.expires_at >= at).values(used_at=at))
        return getattr(used, "rowcount", 0) == 1
