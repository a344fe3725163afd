"""1:N identification and N:M cross-matching over the per-gallery vector indexes.

Scores are per subject: a subject's score is its best template's score, so enrolling
more photos of someone can only help them be found, never crowd out other candidates.
A search only ever runs inside one model space: the gallery's pack decides the space
of the probe templates and of the index searched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from frvs.core.errors import ModelSpaceMismatchError
from frvs.core.metrics import SEARCH_SECONDS
from frvs.core.ranking import best_per_subject, top_subjects
from frvs.core.templates import ModelSpace
from frvs.galleries.calibration import (
    MAX_PROBES,
    OpenSetScores,
    ProgressCallback,
    open_set_scores,
)
from frvs.galleries.models import (
    Candidate,
    CrossMatch,
    CrossMatchPair,
    FaceIdentification,
    Gallery,
    Identification,
)
from frvs.galleries.ports import FaceAnalyser
from frvs.imaging.decode import BGRImage
from frvs.models.pack import PackInfo
from frvs.storage.index.base import Matrix, VectorIndex
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store

logger = logging.getLogger(__name__)

_QUERY_BATCH = 512
_SUBJECT_BATCH = 256


def decision_threshold(gallery: Gallery, info: PackInfo) -> float:
    """The gallery's own threshold, else the pack's for its FMR target, else the default."""
    if gallery.threshold is not None:
        return gallery.threshold
    if gallery.fmr_target is not None:
        calibrated = info.thresholds.for_fmr(gallery.fmr_target)
        if calibrated is not None:
            return calibrated
        logger.warning("pack %s has no threshold calibrated for FMR %g; using its default",
                       info.name, gallery.fmr_target)
    return info.thresholds.default


class Searcher:
    """Ranks subjects of a gallery for probe vectors, reading owners from the store."""

    def __init__(self, store: Store, catalog: IndexCatalog, analyser: FaceAnalyser) -> None:
        self._store = store
        self._catalog = catalog
        self._analyser = analyser

    def identify(self, gallery: Gallery, image: BGRImage, top: int) -> Identification:
        """Every face of ``image`` searched in ``gallery``; a match at its threshold."""
        info = self._analyser.packs.info(gallery.pack)
        threshold = decision_threshold(gallery, info)
        faces = self._analyser.analyse(image, gallery.pack)
        results: list[FaceIdentification] = []
        if faces:
            index = self._catalog.fresh(gallery.id, info.space)
            queries = np.stack([f.template.vector for f in faces]).astype(np.float32)
            ranked = self.rank(index, queries, top, gallery.name)
            for face, best in zip(faces, ranked, strict=True):
                candidates = tuple(Candidate(s, sc) for s, sc in top_subjects(best, top))
                match = candidates[0].subject if candidates and (
                    candidates[0].score >= threshold) else None
                results.append(FaceIdentification(face.face.detection.box,
                                                  face.face.quality.overall, candidates, match))
        return Identification(gallery.name, gallery.pack, threshold, tuple(results))

    def rank(self, index: VectorIndex, queries: Matrix, top: int,
             gallery: str | None = None) -> list[dict[str, float]]:
        """For each query, the best score of at least ``top`` subjects (fewer if the
        gallery has fewer): fetch more templates until enough distinct subjects appear.
        With ``gallery``, the time taken is recorded in its search latency metric."""
        if gallery is None:
            return self._rank(index, queries, top)
        started = time.perf_counter()
        try:
            return self._rank(index, queries, top)
        finally:
            SEARCH_SECONDS.labels(gallery).observe(time.perf_counter() - started)

    def _rank(self, index: VectorIndex, queries: Matrix, top: int) -> list[dict[str, float]]:
        total = index.count()
        if total == 0 or top <= 0:
            return [{} for _ in range(len(queries))]
        k = min(total, max(4 * top, top + 8))
        while True:
            result = index.search(queries, k)
            with self._store.unit() as uow:
                owners = uow.templates.owners(int(i) for i in result.ids.ravel())
            best = [best_per_subject(zip(scores, ids, strict=True), owners.get)
                    for scores, ids in zip(result.scores, result.ids, strict=True)]
            if k >= total or all(len(row) >= top for row in best):
                return best
            k = min(total, k * 4)

    def crossmatch(self, a: Gallery, b: Gallery, threshold: float | None, top: int) -> CrossMatch:
        """Subject pairs of ``a`` x ``b`` scoring at least ``threshold``; with ``a == b``,
        the likely duplicates inside one gallery (each unordered pair once)."""
        info_a, info_b = self._analyser.packs.info(a.pack), self._analyser.packs.info(b.pack)
        if info_a.space != info_b.space:
            raise ModelSpaceMismatchError(
                f"galleries {a.name!r} ({info_a.space.key}) and {b.name!r} ({info_b.space.key}) "
                "hold templates of different model spaces; reindex one with the other's pack"
            )
        cut = decision_threshold(b, info_b) if threshold is None else threshold
        same = a.id == b.id
        index = self._catalog.fresh(b.id, info_b.space)
        pairs: dict[tuple[str, str], float] = {}
        for owners_a, vectors in self._batches(a, info_a.space):
            ranked = self.rank(index, vectors, top + 1 if same else top)
            for subject_a, row in zip(owners_a, ranked, strict=True):
                for subject_b, score in row.items():
                    if score < cut or (same and subject_a == subject_b):
                        continue
                    key = tuple(sorted((subject_a, subject_b))) if same else (subject_a, subject_b)
                    pair = (key[0], key[1])
                    pairs[pair] = max(score, pairs.get(pair, -np.inf))
        ordered = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        return CrossMatch(a.name, b.name, cut,
                          tuple(CrossMatchPair(x, y, s) for (x, y), s in ordered))

    def open_set(self, gallery: Gallery, on_progress: ProgressCallback | None = None,
                 max_probes: int = MAX_PROBES) -> OpenSetScores:
        """Templates of ``gallery`` searched against the whole of it (see
        ``frvs.galleries.calibration``): every template, or whole subjects drawn at random
        until ``max_probes`` templates, so memory stays small at 10M."""
        space = self._analyser.packs.info(gallery.pack).space
        index = self._catalog.fresh(gallery.id, space)
        with self._store.unit() as uow:
            subjects = np.random.default_rng(0).permutation(uow.subjects.ids_in(gallery.id))
        total = min(index.count(), max_probes)
        owners: list[str] = []
        vectors: list[Matrix] = []
        best: list[dict[str, float]] = []
        start = 0
        while start < len(subjects) and len(owners) < max_probes:
            # Whole subjects (their mated searches need all their templates), about as
            # many as templates are still wanted.
            step = min(_SUBJECT_BATCH, max_probes - len(owners))
            with self._store.unit() as uow:
                batch_owners, batch = uow.templates.of_subjects(
                    subjects[start : start + step].tolist(), space)
            start += step
            best.extend(self.rank(index, batch, 2))  # its own subject and the best other
            owners.extend(batch_owners)
            vectors.append(batch)
            if on_progress is not None:
                on_progress(min(len(owners), total), total)
        matrix = (np.concatenate(vectors) if vectors
                  else np.empty((0, space.dimension), dtype=np.float32))
        return open_set_scores(owners, matrix, best)

    def _batches(self, gallery: Gallery, space: ModelSpace) -> list[tuple[Sequence[str], Matrix]]:
        with self._store.unit() as uow:
            subjects = {s.id: s.external_id for s in uow.subjects.in_gallery(gallery.id)}
            stored = uow.templates.in_space(gallery.id, space.key)
        batches: list[tuple[Sequence[str], Matrix]] = []
        for start in range(0, len(stored), _QUERY_BATCH):
            chunk = stored[start : start + _QUERY_BATCH]
            batches.append(([subjects[t.subject_id] for t in chunk],
                            np.stack([t.template.vector for t in chunk])))
        return batches
