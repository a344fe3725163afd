"""List envelopes with opaque cursors: ``{"items": [...], "next_cursor": "..."}``.

A cursor encodes the sort key of the last item returned; the next page starts after
it, so pages stay stable while rows are added (no offset drift).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from frvs.core.errors import InvalidInputError

T = TypeVar("T")
K = TypeVar("K")

CursorQuery = Annotated[str | None, Query(
    description="The next_cursor of the previous page; omit for the first page.",
    max_length=500)]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="Items per page.")]


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= to get the next page.")


def encode_cursor(value: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": value}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | int | None:
    """The sort key in ``cursor``; a malformed cursor is a 400, never a 500."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError("invalid cursor; pass next_cursor from a previous page") from exc
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInputError("invalid cursor; pass next_cursor from a previous page")
    return value


def page_by_key(items: Sequence[T], key: Callable[[T], str], cursor: str | None,
                limit: int) -> tuple[list[T], str | None]:
    """A page of ``items`` (sorted by ``key``) after the cursor, and the next cursor."""
    after = decode_cursor(cursor)
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [i for i in ordered if key(i) > str(after)]
    chunk = ordered[:limit]
    more = len(ordered) > limit
    return chunk, (encode_cursor(key(chunk[-1])) if more and chunk else None)
