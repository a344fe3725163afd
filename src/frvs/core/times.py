"""The span of time FRVS accepts from its callers.

Python's dates end at 9999-12-31; a time at that edge given as a query bound, a day or
a sighting overflows as soon as FRVS adds a retention period or a day to it. Times that
come from outside are checked here, where they enter, so the refusal is a clear
``InvalidInputError`` (400) and never an overflow deep in a report (500).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from frvs.core.errors import InvalidInputError

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Accepted times fall in [EARLIEST, LATEST): generous for any record or report, and
far enough from Python's limits that adding retention periods cannot overflow."""

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware (UTC); services take one so tests can set it."""


def utc_now() -> datetime:
    """The current time in UTC: the clock FRVS runs on outside tests."""
    return datetime.now(UTC)


def check_time(value: datetime, name: str) -> datetime:
    """``value`` if it has a time zone and falls in the accepted span."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{name} needs a time zone (UTC: a trailing Z)")
    # Compare the naive parts first: converting a time near year 1 or 9999 to UTC can
    # itself overflow.
    if not EARLIEST.year <= value.year < LATEST.year or not EARLIEST <= value < LATEST:
        raise InvalidInputError(
            f"{name} {value.isoformat()} is out of range: times must fall between "
            f"{EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value


def check_day(value: date, name: str) -> date:
    """``value`` if it falls in the accepted span."""
    if not EARLIEST.date() <= value < LATEST.date():
        raise InvalidInputError(
            f"{name} {value.isoformat()} is out of range: days must fall between "
            f"{EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value
