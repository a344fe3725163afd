"""Who counts as the same person: holders compared after folding the ways one name can
be spelled differently, and the actors that vouch for a person."""

from __future__ import annotations

import pytest

from frvs.core.caller import Actor, Role, normalise_holder
from frvs.core.errors import InvalidInputError, InvalidRecordError


@pytest.mark.parametrize("spelling", [
    "alice", "Alice", "  ALICE ", "ａｌｉｃｅ", "Ａlice", "al\u200bice", "alice\u2060",
    "\ufeffalice", "ALICE\u200d",
    # The adversary's spellings: zero-width marks that are not format characters
    # (combining grapheme joiner, variation selectors) and letters that render as nothing.
    "alice\u034f", "alice\ufe0f", "al\U000e0101ice", "alice\u3164", "alice\u2800",
    "\u115falice", "alice\uffa0", "a\u180blice",
])
def test_every_spelling_of_one_holder_is_one_person(spelling: str) -> None:
    assert normalise_holder(spelling) == "alice"


def test_other_names_stay_other_people() -> None:
    # A Cyrillic "а" looks alike but is another letter, hence another name.
    assert normalise_holder("\u0430lice") != normalise_holder("alice")
    assert normalise_holder("alice b") != normalise_holder("alice")
    assert normalise_holder("Alice   B") == "alice b"


@pytest.mark.parametrize("bad", ["", "   ", "\u200b", "\u034f\u3164\u2800", "al\x00ice", "a\nb",
                                 "x" * 201])
def test_empty_invisible_or_control_holders_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        normalise_holder(bad)


def test_only_a_key_vouches_for_a_person() -> None:
    assert Actor("key", "ann's laptop", "k_1", Role.REVIEWER, "ann").person == "ann"
    assert Actor("cli", "root", "k_1", Role.REVIEWER, "ann").person == "ann"
    assert Actor("cli", "root").person is None
    assert Actor("system", "camera-runner").person is None
    with pytest.raises(InvalidRecordError):
        Actor("key", "no id")
    with pytest.raises(InvalidRecordError):
        Actor("system", "x", "k_1")
