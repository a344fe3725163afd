"""The store-backed matcher: the galleries' vector indexes and 1:N ranking."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from frvs.core.errors import ModelSpaceMismatchError, NotFoundError
from frvs.core.ranking import top_subjects
from frvs.core.templates import Template, ensure_same_space
from frvs.galleries.ports import FaceAnalyser
from frvs.galleries.search import Searcher, decision_threshold
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store
from frvs.video.models import GalleryCandidate


class GalleryMatcher:
    """Scores templates against stored galleries at each gallery's threshold."""

    def __init__(self, store: Store, catalog: IndexCatalog, analyser: FaceAnalyser) -> None:
        self._store = store
        self._catalog = catalog
        self._analyser = analyser
        self._searcher = Searcher(store, catalog, analyser)

    def pack_for(self, galleries: Sequence[str]) -> str:
        if not galleries:
            raise NotFoundError("a camera needs at least one gallery to match against")
        with self._store.unit() as uow:
            found = [uow.galleries.get(name) for name in galleries]
        packs = {g.pack for g in found}
        if len(packs) > 1:
            raise ModelSpaceMismatchError(
                f"galleries {', '.join(galleries)} use different packs ({', '.join(packs)}); "
                "reindex them with one pack to watch them together")
        return found[0].pack

    def match(self, templates: Sequence[Template], galleries: Sequence[str],
              top: int = 5) -> list[list[GalleryCandidate]]:
        out: list[list[GalleryCandidate]] = [[] for _ in templates]
        if not templates:
            return out
        with self._store.unit() as uow:
            found = [uow.galleries.get(name) for name in galleries]
        for gallery in found:
            info = self._analyser.packs.info(gallery.pack)
            for t in templates:
                ensure_same_space(info.space, t.space)
            threshold = decision_threshold(gallery, info)
            index = self._catalog.fresh(gallery.id, info.space)
            queries = np.stack([t.vector for t in templates]).astype(np.float32)
            for row, best in enumerate(self._searcher.rank(index, queries, top,
                                                                  gallery.name)):
                out[row].extend(GalleryCandidate(gallery.name, gallery.kind.value, s, sc,
                                                 threshold) for s, sc in top_subjects(best, top))
        return out
