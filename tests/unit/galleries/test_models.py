"""Gallery records and rules: metadata policy, gallery specs, subject ids, face choice."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import pytest

from frvs.core.errors import InvalidInputError, ProhibitedAttributeError
from frvs.galleries.models import GalleryKind, GallerySpec, SubjectSpec, check_metadata

REFUSED = pytest.raises(ProhibitedAttributeError)
FINE = nullcontext()


@pytest.mark.parametrize(("key", "expectation"), [
    ("race", REFUSED), ("Race", REFUSED), ("ethnic_origin", REFUSED), ("ethnicity", REFUSED),
    ("skin colour", REFUSED), ("skinTone", REFUSED), ("religious_belief", REFUSED),
    ("religion", REFUSED), ("politicalOpinion", REFUSED), ("party_politics", REFUSED),
    ("health", REFUSED), ("medical_notes", REFUSED), ("disability", REFUSED),
    ("sexual_orientation", REFUSED), ("sexuality", REFUSED), ("emotion", REFUSED),
    ("current-mood", REFUSED),
    ("badge", FINE), ("trace_id", FINE), ("department", FINE), ("grace_period", FINE),
    ("employee number", FINE), ("skinner_box", FINE),
])
def test_metadata_keys_naming_special_categories_are_refused(
    key: str, expectation: AbstractContextManager[object]
) -> None:
    with expectation:
        assert check_metadata({key: "v"}) == {key.strip(): "v"}


def test_subject_spec_checks_metadata_and_id() -> None:
    with pytest.raises(ProhibitedAttributeError):
        SubjectSpec("a", metadata={"Ethnicity": "x"})
    for bad in ("", "a/b", "tab\there"):
        with pytest.raises(InvalidInputError):
            SubjectSpec(bad)
    assert SubjectSpec("Jane Doe #1").external_id == "Jane Doe #1"


@pytest.mark.parametrize(("kwargs", "ok"), [
    ({"name": "people"}, True),
    ({"name": "bad name"}, False),
    ({"name": "-dash"}, False),
    ({"name": "wl", "kind": GalleryKind.WATCH_LIST}, False),
    ({"name": "wl", "kind": GalleryKind.WATCH_LIST, "purpose": "p"}, False),
    ({"name": "wl", "kind": GalleryKind.WATCH_LIST, "purpose": "p", "legal_basis": "l"}, True),
    ({"name": "r", "retention_days": 0}, False),
    ({"name": "t", "threshold": 1.5}, False),
    ({"name": "f", "fmr_target": 0.0}, False),
    ({"name": "f", "fmr_target": 1e-3}, True),
])
def test_gallery_spec_rules(kwargs: dict[str, object], ok: bool) -> None:
    with nullcontext() if ok else pytest.raises(InvalidInputError):
        GallerySpec(**kwargs)  # type: ignore[arg-type]


def test_a_name_alone_makes_a_general_gallery_with_documented_defaults() -> None:
    spec = GallerySpec("people")
    assert spec.kind is GalleryKind.GENERAL
    assert (spec.retention_days, spec.threshold, spec.keep_crops, spec.pack) == (
        None, None, False, None)
