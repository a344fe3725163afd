"""Anchors: heads of the audit trail kept outside the database.

An anchor is one earlier head of the chain (sequence number and hash) and the time it
was taken. ``frvs audit checkpoint`` appends the current head as one JSON line to a file
and/or posts it to a URL; ``frvs audit verify --anchors FILE`` checks every line of such a
file against the trail. Someone who can write to the database can recompute every hash,
but cannot change an anchor they cannot reach.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from frvs.core.errors import FileReadError, FrvsError, InvalidInputError

POST_TIMEOUT_S = 10.0


class AnchorDeliveryError(FrvsError):
    """An anchor could not be written to its file or posted to its URL."""

    code = "anchor_delivery_failed"


@dataclass(frozen=True, slots=True)
class Anchor:
    """One head of the chain (``seq``, ``hash``) kept outside the database; ``source``
    says where it was read from, for the report."""

    seq: int
    hash: str
    at: datetime | None = None
    source: str = "--anchor"

    def __post_init__(self) -> None:
        if self.seq < 0:
            raise InvalidInputError(f"an anchor's seq is 0 or more, got {self.seq}")
        if len(self.hash) != 64 or any(c not in "0123456789abcdef" for c in self.hash):
            raise InvalidInputError(f"an anchor's hash is 64 lower-case hex digits, got "
                                    f"{self.hash[:70]!r}")

    @classmethod
    def parse(cls, text: str, source: str = "--anchor") -> Anchor:
        """``SEQ:HASH`` (as printed by ``frvs audit verify``) or a checkpoint JSON line."""
        text = text.strip()
        if text.startswith("{"):
            try:
                doc = json.loads(text)
                seq, digest = doc["seq"], doc["hash"]
                at = datetime.fromisoformat(doc["at"]) if doc.get("at") else None
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInputError(f"{source}: not a checkpoint line "
                                        f'{{"seq", "hash", "at"}}: {exc}') from exc
            if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(digest, str):
                raise InvalidInputError(f"{source}: seq must be an integer and hash a string")
            return cls(seq, digest, at, source)
        seq_text, sep, digest = text.partition(":")
        if not sep or not seq_text.isdigit():
            raise InvalidInputError(f"{source}: an anchor is SEQ:HASH as printed by "
                                    f"'frvs audit verify', got {text[:80]!r}")
        return cls(int(seq_text), digest, None, source)

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "hash": self.hash,
                "at": self.at.isoformat() if self.at else None}

    def line(self) -> str:
        """The checkpoint line: compact JSON, no trailing newline."""
        return json.dumps(self.as_dict(), separators=(",", ":"))


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor of a checkpoint file (blank lines and ``#`` comments skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FileReadError(f"cannot read the anchors file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"the anchors file {path} is not UTF-8 text") from exc
    anchors = [Anchor.parse(line, f"{path.name}:{number}")
               for number, line in enumerate(text.splitlines(), start=1)
               if line.strip() and not line.lstrip().startswith("#")]
    if not anchors:
        raise InvalidInputError(f"the anchors file {path} holds no anchor")
    return anchors


def append_anchor(path: Path, anchor: Anchor) -> None:
    """Append the anchor as one line and fsync it (and the folder, when the file is new)."""
    created = not path.exists()
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(anchor.line() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if created:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except OSError as exc:
        raise AnchorDeliveryError(f"cannot append the checkpoint to {path}: "
                                  f"{exc.strerror or exc}") from exc


def post_anchor(url: str, anchor: Anchor) -> int:
    """POST the anchor as JSON to an http(s) URL; returns the status (2xx, else an error)."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:  # an unbalanced [ in the host, say
        scheme = ""
    if scheme not in ("http", "https"):
        raise InvalidInputError(f"--url must be an http:// or https:// URL, got {url[:80]!r}")
    import httpx  # only here: every process that audits imports this module

    try:
        response = httpx.post(url, json=anchor.as_dict(), timeout=POST_TIMEOUT_S)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise AnchorDeliveryError(f"cannot post the checkpoint to {url}: {exc}") from exc
    if not response.is_success:
        raise AnchorDeliveryError(f"posting the checkpoint to {url} was answered "
                                  f"{response.status_code} {response.reason_phrase}")
    return response.status_code
