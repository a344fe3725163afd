"""The store façade: the database, its repositories as one unit of work, and media."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from frvs.storage.database import Database
from frvs.storage.media import MediaStore
from frvs.storage.repositories import GalleryRepository, SubjectRepository, TemplateRepository


@dataclass(frozen=True, slots=True)
class UnitOfWork:
    """The repositories of one transaction."""

    session: Session
    galleries: GalleryRepository
    subjects: SubjectRepository
    templates: TemplateRepository


class Store:
    """Galleries, subjects and templates in SQL; crops under ``media/``."""

    def __init__(self, url: str, media_root: Path) -> None:
        """Nothing is touched until ``open``: building an application stays cheap."""
        self.database = Database(url)
        self.media = MediaStore(media_root)
        self._opened = False

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
                             TemplateRepository(session))

    def close(self) -> None:
        self.database.close()
