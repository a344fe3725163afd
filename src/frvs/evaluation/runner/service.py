"""Evaluation runs: verification on pairs, identification on image trees.

Templates are made once per image and pack and cached for the life of the service (one
CLI run), so side-by-side packs and repeated images cost nothing extra.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from frvs.app import Application
from frvs.core.templates import Template
from frvs.evaluation import metrics
from frvs.evaluation.datasets import IdentificationSet, PairSet
from frvs.evaluation.groups import group_differentials
from frvs.evaluation.identification import StackedGallery, search_image
from frvs.evaluation.models import (
    Failure,
    IdentificationResult,
    OperatingThreshold,
    RunInfo,
    Search,
    VerificationResult,
)
from frvs.evaluation.runner.acquire import (
    AcquireOptions,
    Acquisition,
    Progress,
    acquire,
    no_progress,
)


def _failures(acquired: Sequence[Acquisition]) -> tuple[Failure, ...]:
    return tuple(Failure(str(a.image), a.failure or "no_face", a.message or "")
                 for a in acquired if not a.ok)


class EvaluationService:
    """Runs evaluations over the application's packs; one instance per run."""

    def __init__(self, app: Application, progress: Progress = no_progress, workers: int = 1):
        self._app = app
        self._progress = progress
        self._workers = max(1, workers)
        self._cache: dict[tuple[str, bool, Path], Acquisition] = {}

    def _acquire(self, images: Sequence[Path], pack: str, all_faces: bool) -> list[Acquisition]:
        todo = [p for p in dict.fromkeys(images) if (pack, all_faces, p) not in self._cache]
        if todo:
            done = acquire(todo, self._app.engine, self._app.settings,
                           AcquireOptions(pack, all_faces, self._workers), self._progress)
            self._cache.update({(pack, all_faces, p): a for p, a in done.items()})
        return [self._cache[(pack, all_faces, p)] for p in images]

    def threshold_for(self, pack: str, threshold: float | None) -> OperatingThreshold:
        """The explicit threshold, else the pack's default with its stated source."""
        if threshold is not None:
            return OperatingThreshold(threshold, "given on the command line (--threshold)")
        info = self._app.packs.info(pack)
        return OperatingThreshold(info.thresholds.default, info.thresholds.source)

    def verification(
        self,
        data: PairSet,
        pack: str | None = None,
        threshold: float | None = None,
        bootstrap: metrics.BootstrapOptions | None = None,
    ) -> VerificationResult:
        """Every 1:1 figure for ``pack`` on ``data`` (see ``frvs.evaluation.metrics``)."""
        name = pack or self._app.packs.default_name
        info = self._app.packs.info(name)
        started = time.perf_counter()
        images = data.images
        by_image = dict(zip(images, self._acquire(images, name, False), strict=True))
        scores = np.array([
            by_image[p.a].templates[0].similarity(by_image[p.b].templates[0])
            if by_image[p.a].ok and by_image[p.b].ok else -np.inf
            for p in data.pairs
        ])
        same = np.array([p.same for p in data.pairs], dtype=bool)
        sets = metrics.ScoreSets(scores[same], scores[~same])
        op = self.threshold_for(name, threshold)
        curve = metrics.roc(sets)
        missing = ~np.isfinite(scores)
        groups = (group_differentials(scores.tolist(), same.tolist(),
                                      [p.group for p in data.pairs], op.value)
                  if data.has_groups else None)
        return VerificationResult(
            run=RunInfo(name, info.version, str(data.source), data.kind, len(images),
                        time.perf_counter() - started, self._workers),
            threshold=op,
            scores=sets,
            pair_scores=scores,
            decisions=metrics.decisions(sets, op.value),
            roc=curve,
            auc=metrics.auc(sets),
            eer=metrics.eer(curve),
            at_fmr=tuple(metrics.fnmr_at_fmr(curve, t, sets.impostor.size)
                         for t in metrics.DEFAULT_FMR_TARGETS),
            intervals=metrics.bootstrap(sets, op.value, options=bootstrap),
            failures=_failures(list(by_image.values())),
            fta_pairs=(int((missing & same).sum()), int((missing & ~same).sum())),
            groups=groups,
        )

    def identification(
        self, data: IdentificationSet, pack: str | None = None, threshold: float | None = None
    ) -> IdentificationResult:
        """CMC and open-set figures of ``pack`` on ``data``, searched exactly in memory."""
        name = pack or self._app.packs.default_name
        info = self._app.packs.info(name)
        started = time.perf_counter()
        enrol = self._acquire([g.path for g in data.gallery], name, False)
        enrolled: dict[str, list[Template]] = {}
        for image, acq in zip(data.gallery, enrol, strict=True):
            enrolled.setdefault(image.identities[0], []).extend(acq.templates[:1])
        fte = frozenset(n for n, ts in enrolled.items() if not ts)
        gallery = StackedGallery.build(enrolled)
        probes = self._acquire([p.path for p in data.probes], name, True)
        searches: list[Search] = []
        for image, acq in zip(data.probes, probes, strict=True):
            searches += search_image(gallery, str(image.path), image.identities,
                                     acq.templates, fte)
        op = self.threshold_for(name, threshold)
        mated = [s for s in searches if s.mated]
        non_mated = [s for s in searches if not s.mated]
        open_set = metrics.open_set(
            [s.mate_score if s.rank == 1 and s.mate_score is not None else -np.inf
             for s in mated],
            [s.top_score if s.top_score is not None else -np.inf for s in non_mated],
            op.value,
        )
        return IdentificationResult(
            run=RunInfo(name, info.version, str(data.root), "identities",
                        len(data.gallery) + len(data.probes), time.perf_counter() - started,
                        self._workers),
            threshold=op,
            layout=data.layout,
            enrolled=tuple(sorted(enrolled)),
            gallery_templates=int(gallery.owners.size),
            searches=tuple(searches),
            cmc=metrics.cmc([s.rank for s in mated], 10) if mated else np.zeros(0),
            open_set=open_set,
            failed_to_enrol=tuple(sorted(fte)),
            failures=_failures(enrol + probes),
            excluded=tuple(Failure(str(e.path), "excluded", e.reason) for e in data.excluded),
        )
