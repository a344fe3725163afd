"""Sighting search for investigators: by time, camera and subject, or by a probe photo
compared with the sightings' best-shot templates. Every search is audited with its case
reference and purpose (required through the API). An expired sighting is never found,
even before the retention run deletes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from frvs.core.caller import subject_ref
from frvs.core.times import Clock
from frvs.galleries.ports import FaceAnalyser
from frvs.imaging.decode import BGRImage
from frvs.oversight.audit import AuditTrail
from frvs.oversight.models import AuditContext
from frvs.storage.store import Store
from frvs.video.models import StoredSighting
from frvs.video.repository import SightingFilter, SightingRepository


@dataclass(frozen=True, slots=True)
class SightingQuery:
    camera: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    gallery: str | None = None
    subject: str | None = None
    before_id: int | None = None
    limit: int = 100

    def summary(self) -> dict[str, object]:
        return {"camera": self.camera, "gallery": self.gallery, "subject": self.subject,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None}


@dataclass(frozen=True, slots=True)
class ProbeHit:
    sighting: StoredSighting
    score: float


def _named(hits: list[StoredSighting]) -> list[str]:
    return [subject_ref(s.gallery, s.subject) for s in hits if s.gallery and s.subject]


class SightingSearch:
    """Audited queries over stored sightings."""

    def __init__(self, store: Store, trail: AuditTrail, analyser: FaceAnalyser,
                 clock: Clock) -> None:
        self._store = store
        self._trail = trail
        self._analyser = analyser
        self._clock = clock

    def _filter(self, query: SightingQuery) -> SightingFilter:
        # An empty criterion is no criterion.
        return SightingFilter(self._clock(), camera=query.camera or None,
                              since=query.since or None, until=query.until or None,
                              gallery=query.gallery or None, subject=query.subject or None)

    def search(self, context: AuditContext, query: SightingQuery) -> list[StoredSighting]:
        """Sightings newest first, by time, camera and matched subject."""
        with self._trail.operation(context, "sightings.search", query.summary()) as rec:
            if context.actor.kind == "key":  # refused inside: the refusal is audited
                context.require_case("sighting search")
            with self._store.unit() as uow:
                hits = uow.repo(SightingRepository).newest_first(
                    self._filter(query), query.limit, query.before_id)
            rec.result = {"sightings": len(hits)}
            rec.subjects = _named(hits)
        return hits

    def by_probe(self, context: AuditContext, image: BGRImage, probe_sha256: str,
                 query: SightingQuery, threshold: float | None = None) -> list[ProbeHit]:
        """Sightings whose best shot resembles the probe's largest face, best first."""
        inputs = query.summary() | {"probe_sha256": probe_sha256, "threshold": threshold}
        with self._trail.operation(context, "sightings.search", inputs) as rec:
            if context.actor.kind == "key":  # refused inside: the refusal is audited
                context.require_case("sighting search")
            packs = self._analyser.packs
            info = packs.info(packs.default_name)
            cut = info.thresholds.default if threshold is None else threshold
            faces = self._analyser.analyse(image, info.name)
            hits: list[ProbeHit] = []
            if faces:
                probe = faces[0].template.vector.astype(np.float32)
                hits = self._compare(probe, info.space.key, query, cut)
            rec.result = {"faces": len(faces), "sightings": len(hits), "threshold": cut}
            rec.subjects = _named([h.sighting for h in hits])
        return hits

    def _compare(self, probe: np.ndarray, space_key: str, query: SightingQuery,
                 cut: float) -> list[ProbeHit]:
        hits = []
        with self._store.unit() as uow:
            for stored, blob in uow.repo(SightingRepository).templates(self._filter(query),
                                                                         space_key):
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape != probe.shape:
                    continue
                score = float(vector @ probe)
                if score >= cut:
                    hits.append(ProbeHit(stored, score))
        hits.sort(key=lambda h: -h.score)
        return hits[: query.limit]
