"""An in-memory matcher over enrolled templates, on the exact vector index.

Used where there is no store: tests, benchmarks and one-off runs. Subjects are scored
by their best template, as the galleries' 1:N search does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from frvs.core.errors import ModelSpaceMismatchError, NotFoundError
from frvs.core.ranking import best_per_subject, top_subjects
from frvs.core.templates import ModelSpace, Template, ensure_same_space
from frvs.storage.index.exact import ExactIndex
from frvs.video.models import GalleryCandidate


@dataclass
class _Gallery:
    name: str
    kind: str
    threshold: float
    pack: str
    space: ModelSpace
    index: ExactIndex
    owners: list[str] = field(default_factory=list)

    def owner(self, ident: int) -> str | None:
        """The subject of template ``ident``; None for the index's padding (-1)."""
        return self.owners[ident] if ident >= 0 else None


class TemplateMatcher:
    """Galleries of (subject, template) pairs held in memory."""

    def __init__(self) -> None:
        self._galleries: dict[str, _Gallery] = {}

    def add_gallery(self, name: str, kind: str, threshold: float, pack: str,
                    space: ModelSpace) -> None:
        self._galleries[name] = _Gallery(name, kind, threshold, pack, space,
                                         ExactIndex(space.dimension))

    def enrol(self, gallery: str, subject: str, template: Template) -> None:
        g = self._get(gallery)
        ensure_same_space(g.space, template.space)
        g.index.add([len(g.owners)], template.vector.reshape(1, -1))
        g.owners.append(subject)

    def pack_for(self, galleries: Sequence[str]) -> str:
        chosen = [self._get(name) for name in galleries]
        if not chosen:
            raise NotFoundError("no gallery given")
        spaces = {g.space for g in chosen}
        if len(spaces) > 1:
            raise ModelSpaceMismatchError(
                "the galleries of one camera must share a model space, got "
                + ", ".join(sorted(s.key for s in spaces)))
        return chosen[0].pack

    def match(self, templates: Sequence[Template], galleries: Sequence[str],
              top: int = 5) -> list[list[GalleryCandidate]]:
        out: list[list[GalleryCandidate]] = [[] for _ in templates]
        if not templates:
            return out
        for name in galleries:
            g = self._get(name)
            for t in templates:
                ensure_same_space(g.space, t.space)
            if g.index.count() == 0:
                continue
            queries = np.stack([t.vector for t in templates])
            result = g.index.search(queries, g.index.count())
            owner = g.owner
            for row, (scores, ids) in enumerate(zip(result.scores, result.ids, strict=True)):
                best = best_per_subject(zip(scores, ids, strict=True), owner)
                out[row].extend(GalleryCandidate(g.name, g.kind, s, sc, g.threshold)
                                for s, sc in top_subjects(best, top))
        return out

    def _get(self, name: str) -> _Gallery:
        if name not in self._galleries:
            raise NotFoundError(f"gallery {name!r} not found")
        return self._galleries[name]
