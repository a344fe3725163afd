"""The store façade: the database, its repositories as one unit of work, and media.

A unit of work is also where an operation meets its audit entry: ``uow.audit`` appends
the entry in the same transaction as the operation's own writes, so both commit or
neither does (kill -9 at any moment leaves no template without its entry). The audit
trail itself lives in ``frvs.oversight``; the composition root attaches it as the
store's ``Journal``, and a store without one refuses to record an operation rather
than record it silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar, cast

from sqlalchemy import text
from sqlalchemy.orm import Session

from frvs.core.caller import AuditContext, AuditDraft
from frvs.core.errors import ConfigurationError
from frvs.storage.database import Database
from frvs.storage.events import EventLog, append_event
from frvs.storage.media import MediaStore
from frvs.storage.repositories import GalleryRepository, SubjectRepository, TemplateRepository


class Journal(Protocol):
    """Appends an audit entry inside a given transaction (``AuditTrail`` is one)."""

    def write(self, session: Session, caller: AuditContext, draft: AuditDraft) -> object: ...


R = TypeVar("R")


class _NoJournal:
    def write(self, session: Session, caller: AuditContext, draft: AuditDraft) -> object:
        del session, caller
        raise ConfigurationError(f"{draft.action} cannot be recorded: no audit trail is "
                                 "attached to the store")


@dataclass(frozen=True, slots=True)
class UnitOfWork:
    """The repositories of one transaction, and its audit entries.

    The feature database's repositories (galleries, subjects, templates) are attributes;
    every other aggregate's repository lives in its domain package beside its tables and
    is reached with ``uow.repo(AlertRepository)``: one instance per transaction, on this
    unit's session. Services write and read rows only through repositories.
    """

    session: Session
    galleries: GalleryRepository
    subjects: SubjectRepository
    templates: TemplateRepository
    journal: Journal
    _repos: dict[object, object] = field(default_factory=dict)

    def repo(self, kind: Callable[[Session], R]) -> R:
        """The repository ``kind`` (a class taking the session) in this transaction."""
        found = self._repos.get(kind)
        if found is None:
            found = self._repos[kind] = kind(self.session)
        return cast(R, found)

    def audit(self, caller: AuditContext, draft: AuditDraft) -> None:
        """Append ``draft`` to the audit trail in this transaction."""
        self.journal.write(self.session, caller, draft)

    def publish(self, kind: str, data: dict[str, object], at: datetime,
                subject: str | None = None) -> None:
        """Append an event to the durable event log in this transaction (it reaches
        every replica's live stream once the transaction commits); ``subject`` is the
        ``gallery/subject`` it is about, erased with that subject."""
        append_event(self.session, kind, data, at, subject)

    def serialise(self, key: str) -> None:
        """Make transactions naming the same ``key`` run one after the other, from here
        to their end, whichever process runs them: a transaction-scoped advisory lock on
        PostgreSQL (SQLite's write transactions already run one at a time)."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                 {"k": key})


class Store:
    """Galleries, subjects and templates in SQL; crops under ``media/``."""

    def __init__(self, url: str, media_root: Path) -> None:
        """Nothing is touched until ``open``: building an application stays cheap."""
        self.database = Database(url)
        self.media = MediaStore(media_root)
        self.journal: Journal = _NoJournal()
        self.events = EventLog(self.database)
        self._opened = False

    def attach_journal(self, journal: Journal) -> None:
        """Record every unit of work's audit entries in ``journal`` (the composition
        root attaches the audit trail once, before any use case runs)."""
        self.journal = journal

    def open(self) -> Store:
        """Create or migrate the schema (idempotent; safe when processes race)."""
        if not self._opened:
            self.database.migrate()
            self._opened = True
        return self

    @contextmanager
    def unit(self, write: bool = False) -> Iterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back on an exception.

        ``write=True`` takes the write lock up front (SQLite), so read-then-write
        sequences never fail on a stale snapshot.
        """
        self.open()
        with self.database.session(write=write) as session:
            yield UnitOfWork(session, GalleryRepository(session), SubjectRepository(session),
                             TemplateRepository(session), self.journal)

    def audit(self, caller: AuditContext, draft: AuditDraft) -> None:
        """Append an entry in a transaction of its own (``frvs.core.caller.AuditLog``)."""
        with self.unit(write=True) as uow:
            uow.audit(caller, draft)

    def close(self) -> None:
        self.events.close()
        self.database.close()
