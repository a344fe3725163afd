"""What the video pipeline needs from outside: a matcher over galleries.

The store-backed matcher (``frvs.pipeline.gallery_matcher.GalleryMatcher``) and the in-memory
``frvs.video.memory_matcher.TemplateMatcher`` both satisfy it, so the pipeline runs in tests
on real templates without a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from frvs.core.templates import Template
from frvs.video.models import GalleryCandidate


class Matcher(Protocol):
    """Scores probe templates against the subjects of named galleries."""

    def pack_for(self, galleries: Sequence[str]) -> str:
        """The model pack whose templates ``galleries`` hold (all must share one);
        ``NotFoundError`` for an unknown gallery, ``ModelSpaceMismatchError`` if mixed."""
        ...

    def match(self, templates: Sequence[Template], galleries: Sequence[str],
              top: int = 5) -> list[list[GalleryCandidate]]:
        """For each template, the best ``top`` subjects of each gallery (best template
        score per subject), with each gallery's decision threshold."""
        ...
