"""1:N searches against an in-memory gallery: exact comparison, no store needed.

An identity's score for a probe face is its best template's score. A probe image may
hold several labelled people; which face is whom is not labelled, so each enrolled person
is matched to the face that ranks them best (greedy by rank, then score; each face used
once). Labelled people not enrolled take the remaining faces, largest first, as
non-mated searches. A labelled person left without a face is a failure to acquire: a miss
at every rank (mated) or no candidate at all (non-mated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from frvs.core.errors import InvalidInputError
from frvs.core.templates import Template, ensure_same_space
from frvs.evaluation.metrics import mated_rank
from frvs.evaluation.models import Search


@dataclass(frozen=True, slots=True)
class StackedGallery:
    """Enrolled templates stacked in one matrix, with their owners."""

    identities: tuple[str, ...]
    matrix: npt.NDArray[np.float32]
    owners: npt.NDArray[np.intp]
    template: Template

    @classmethod
    def build(cls, enrolled: dict[str, list[Template]]) -> StackedGallery:
        names = tuple(sorted(n for n, ts in enrolled.items() if ts))
        if not names:
            raise InvalidInputError("no gallery image gave a usable face: nothing to search")
        templates = [t for n in names for t in enrolled[n]]
        owners = np.asarray([i for i, n in enumerate(names) for _ in enrolled[n]], dtype=np.intp)
        for t in templates:
            ensure_same_space(templates[0].space, t.space)
        matrix = np.stack([t.vector for t in templates]).astype(np.float32)
        return cls(names, matrix, owners, templates[0])

    def identity_scores(self, probe: Template) -> npt.NDArray[np.float64]:
        """Best score per identity (order of ``identities``)."""
        ensure_same_space(self.template.space, probe.space)
        sims = (self.matrix @ probe.vector).astype(np.float64)
        best = np.full(len(self.identities), -np.inf)
        np.maximum.at(best, self.owners, sims)
        return best


def search_image(
    gallery: StackedGallery, probe: str, labels: Sequence[str], faces: Sequence[Template],
    failed_to_enrol: frozenset[str] = frozenset(),
) -> list[Search]:
    """One search per labelled person of a probe image (see the module docstring).

    A person in ``failed_to_enrol`` is in the gallery by label but has no template: the
    search is mated and a miss at every rank (failure to enrol counts against the system).
    """
    index = {n: i for i, n in enumerate(gallery.identities)}
    scored = [gallery.identity_scores(f) for f in faces]
    free = list(range(len(faces)))
    out: list[Search] = []
    mated = [n for n in labels if n in index]
    while mated and free:
        options = [(mated_rank(scored[f], index[n]), -scored[f][index[n]], f, n)
                   for f in free for n in mated]
        rank, _, f, n = min(options)
        out.append(_search(gallery, probe, n, scored[f], float(rank)))
        free.remove(f)
        mated.remove(n)
    misses = mated + [n for n in labels if n in failed_to_enrol]
    out += [Search(probe, n, True, float("inf"), None, None, None) for n in misses]
    for n in (n for n in labels if n not in index and n not in failed_to_enrol):
        if free:
            out.append(_search(gallery, probe, n, scored[free.pop(0)], None))
        else:
            out.append(Search(probe, n, False, float("inf"), None, None, None))
    return out


def _search(gallery: StackedGallery, probe: str, name: str, scores: npt.NDArray[np.float64],
            rank: float | None) -> Search:
    top = int(np.argmax(scores))
    mate = gallery.identities.index(name) if rank is not None else None
    return Search(probe, name, rank is not None, rank if rank is not None else float("inf"),
                  float(scores[mate]) if mate is not None else None,
                  gallery.identities[top], float(scores[top]))
