"""The vector indexes of one process, one per (gallery, model space), kept in step with
the store.

Why one index per (gallery, space) rather than one per space filtered by gallery:
every search names its gallery (identify in G, cross-match A against B, a camera's
watch list), so a per-gallery index answers exactly that question. A shared index
would need a filter inside the search; post-filtering a top-k from an approximate
index returns too few (or zero) candidates when the gallery is a small share of the
space, and in-search filters are not part of the small ``VectorIndex`` port. Per
gallery, deleting a gallery drops its index, a reindex swaps one gallery at a time,
and a small watch list is searched in microseconds even beside a 10M attendance
gallery. The cost, many small index objects when there are thousands of galleries,
is cheap for ``exact`` and acceptable for the others.

Consistency across processes: the store is the truth. Every template added or removed
is logged in the gallery's index change log (``IndexChangeRow``) in the same
transaction, and bumps the gallery's revision. Before a search, ``fresh`` reads the
revision; when it moved, it reads the changes after the last one this index applied and
applies them (removals, then the vectors of additions still stored): one change costs
one small indexed query, whatever the gallery's size. A first load reads the log's head
before the templates, so a change committed during a long load is applied again
afterwards (adding and removing are idempotent). Log ids grow in commit order within a
gallery, so no change is passed over (the "equal counts" hole of comparing counts is
gone). Templates load in pages, so a 10M gallery never sits in memory as Python
objects. So a template is searchable as soon as its enrolment returns, in any process,
and results are also checked against the store (``TemplateRepository.owners``) so an
entry deleted by another process a moment ago is never reported.

Restarts: an index that can be snapshotted (``faiss_pq`` past its ``snapshot_min_size``)
is written to the data directory after its first load from the store, with the log
position it reflects, and again once a tenth of it has changed since. A restart loads
the snapshot, checks it belongs to this gallery, pack, space, settings and log (see
``snapshot.py``), applies the changes after its position like any catch-up, and checks
the count against the store; anything that does not fit is logged and the index is
loaded from the store as before. A dropped gallery's snapshots are deleted with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select

from frvs.core.errors import NotFoundError
from frvs.core.templates import ModelSpace
from frvs.storage.index.base import Matrix, VectorIndex
from frvs.storage.index.factory import IndexSettings, build_index, index_name, is_shared
from frvs.storage.index.snapshot import (
    SnapshotOwner,
    Snapshottable,
    read_snapshot,
    remove_snapshots,
    write_snapshot,
)
from frvs.storage.repositories import VectorBatch
from frvs.storage.schema import GalleryRow, IndexChangeRow, SharedIndexRow, TemplateRow
from frvs.storage.store import Store, UnitOfWork

logger = logging.getLogger(__name__)

_CHANGE_PAGE = 65_536


@dataclass
class _Entry:
    index: VectorIndex
    space: ModelSpace
    gallery_id: int
    revision: int = -1
    # The last change of the gallery's index change log applied here; None until loaded.
    position: int | None = None
    # Changes applied since the index's snapshot was written (or it was loaded).
    snapshot_changes: int = 0
    # Catching up one gallery (a rebuild can take seconds at 10M) must not stall searches
    # of the others: each entry has its own lock; the catalog's guards only the dict.
    lock: threading.RLock = field(default_factory=threading.RLock)


class IndexCatalog:
    """Builds, refreshes and drops this process's indexes."""

    def __init__(self, store: Store, settings: IndexSettings, data_dir: Path) -> None:
        self._store = store
        self._settings = settings
        self._data_dir = data_dir
        self._entries: dict[tuple[int, str], _Entry] = {}
        self._lock = threading.RLock()
        # A Milvus server collection per (gallery, space) that every replica searches.
        self._shared = is_shared(settings)

    def fresh(self, gallery_id: int, space: ModelSpace) -> VectorIndex:
        """The index of ``gallery_id`` in ``space``, caught up with the store."""
        key = (gallery_id, space.key)
        with self._store.unit() as uow:
            revision = uow.galleries.revision(gallery_id)
            if revision is None:
                self.drop(gallery_id)
                raise NotFoundError(f"gallery {gallery_id} no longer exists")
            with self._lock:
                entry = self._entries.get(key) or self._new_entry(gallery_id, space)
            if entry.revision == revision:
                return entry.index
            with entry.lock:
                if entry.revision == revision:  # another thread caught it up meanwhile
                    return entry.index
                with self._forgotten_on_failure(key, entry):
                    if self._shared:
                        return self._catch_up_shared(entry, revision)
                    return self._catch_up(entry, revision, uow)

    def _catch_up(self, entry: _Entry, revision: int, uow: UnitOfWork) -> VectorIndex:
        gallery_id, space = entry.gallery_id, entry.space
        if entry.position is None:
            head = uow.templates.change_head(gallery_id)  # before the load: see above
            if not self._from_snapshot(entry, uow, head):
                self._load(entry, uow.templates.vector_pages(gallery_id, space))
                entry.position = head
                self._snapshot(entry, uow)
        else:
            self._apply(entry, uow)
            index = entry.index
            if (isinstance(index, Snapshottable) and entry.snapshot_changes
                    and entry.snapshot_changes * 10 >= max(index.count(), 1)
                    and index.snapshot_min_size and index.count() >= index.snapshot_min_size):
                self._snapshot(entry, uow)  # a tenth changed since: a restart would re-apply it
        entry.revision = revision
        return entry.index

    def _owner(self, entry: _Entry, uow: UnitOfWork) -> SnapshotOwner:
        gallery = uow.session.get(GalleryRow, entry.gallery_id)
        if gallery is None:
            raise NotFoundError(f"gallery {entry.gallery_id} no longer exists")
        return SnapshotOwner(entry.gallery_id, gallery.created_at.isoformat(), gallery.pack,
                             entry.space.key, entry.space.dimension)

    @staticmethod
    def _anchor(uow: UnitOfWork, gallery_id: int, position: int) -> str | None:
        """What identifies change ``position``: its template, kind and random nonce. A
        store restored from an older backup has no such change, or, once used again,
        another one under the same id (ids are handed out again after a restore, so
        the template id alone can match; the nonce does not)."""
        if position == 0:
            return None
        row = uow.session.get(IndexChangeRow, position)
        if row is None or row.gallery_id != gallery_id:
            return None
        return f"{row.template_id}:{'+' if row.added else '-'}:{row.nonce}"

    def _from_snapshot(self, entry: _Entry, uow: UnitOfWork, head: int) -> bool:
        """Load ``entry`` from its snapshot and apply the changes after it; False (the
        entry left empty, to be loaded from the store) when there is no usable one."""
        index = entry.index
        if not isinstance(index, Snapshottable) or index.snapshot_min_size <= 0:
            return False
        name = index_name(entry.gallery_id, entry.space.key)
        found = read_snapshot(self._data_dir, name, self._owner(entry, uow), head, index)
        if found is not None:
            position, anchor = found
            if anchor != self._anchor(uow, entry.gallery_id, position):
                logger.warning("index snapshot %s not used, rebuilding from the store: its "
                               "change %d is not in the store's log (a restored backup?)",
                               name, position)
                found = None
            else:
                entry.position = position
                try:
                    self._apply(entry, uow)
                    stored = self._stored_count(uow, entry)
                except (RuntimeError, ValueError, MemoryError) as exc:  # the loaded index
                    logger.warning("index snapshot %s not used, rebuilding from the store: "
                                   "catching up failed (%s)", name, exc)
                    found = None
                else:
                    if entry.index.count() != stored:
                        logger.warning("index snapshot %s not used, rebuilding from the "
                                       "store: %d templates after catching up, the store "
                                       "holds %d", name, entry.index.count(), stored)
                        found = None
        if found is None:
            entry.index, entry.position, entry.snapshot_changes = (
                self._build(entry.gallery_id, entry.space), None, 0)
            return False
        # The changes applied after the snapshot stay counted: a clean stop (or a tenth
        # changed) writes them into the snapshot, so the next start re-applies nothing.
        return True

    @staticmethod
    def _stored_count(uow: UnitOfWork, entry: _Entry) -> int:
        return int(uow.session.scalar(
            select(func.count()).select_from(TemplateRow).where(
                TemplateRow.gallery_id == entry.gallery_id,
                TemplateRow.space_key == entry.space.key)) or 0)

    def _snapshot(self, entry: _Entry, uow: UnitOfWork) -> None:
        """Write the entry's index as its snapshot when it is big enough to be worth one.
        A failure to write is logged, never fatal: the store stays the truth."""
        index = entry.index
        assert entry.position is not None
        if (not isinstance(index, Snapshottable) or index.snapshot_min_size <= 0
                or index.count() < index.snapshot_min_size):
            return
        name = index_name(entry.gallery_id, entry.space.key)
        try:
            write_snapshot(self._data_dir, name, self._owner(entry, uow), entry.position,
                           anchor=self._anchor(uow, entry.gallery_id, entry.position),
                           index=index)
        except (OSError, RuntimeError, ValueError) as exc:  # disk full, FAISS I/O, ...
            logger.error("could not write index snapshot %s: %s", name, exc)
            return
        entry.snapshot_changes = 0

    def save_snapshots(self) -> None:
        """Snapshot every loaded index that changed since its snapshot (at shutdown)."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            if entry.position is None or not entry.snapshot_changes or self._shared:
                continue
            with entry.lock, self._store.unit() as uow:
                self._snapshot(entry, uow)

    def _catch_up_shared(self, entry: _Entry, revision: int) -> VectorIndex:
        """Bring an index every replica shares (a Milvus collection) up to the store,
        one replica at a time: the first loads it, the others apply the changes after
        the position recorded beside it in the store."""
        name = index_name(entry.gallery_id, entry.space.key)
        with self._store.unit(write=True) as uow:
            uow.serialise(f"shared-index:{name}")
            row = uow.session.get(SharedIndexRow, name, with_for_update=True)
            if row is None:
                head = uow.templates.change_head(entry.gallery_id)
                reset = getattr(entry.index, "reset", None)
                if reset is not None:  # a collection left by an unshared run
                    reset()
                self._load(entry, uow.templates.vector_pages(entry.gallery_id, entry.space))
                row = SharedIndexRow(name=name, position=head)
                uow.session.add(row)
            else:
                entry.position = row.position
                self._apply(entry, uow)
                row.position = entry.position
            entry.position = row.position
        entry.revision = revision
        return entry.index

    def _apply(self, entry: _Entry, uow: UnitOfWork) -> None:
        """Apply the gallery's changes after ``entry.position``, in pages, in order:
        each template's last change wins."""
        assert entry.position is not None
        while True:
            changes = uow.templates.changes_since(entry.gallery_id, entry.position,
                                                  _CHANGE_PAGE)
            if not changes:
                return
            last: dict[int, bool] = {}
            for change in changes:
                if change.space_key == entry.space.key:
                    last[change.template_id] = change.added
            gone = np.fromiter((t for t, added in last.items() if not added), dtype=np.int64)
            new = np.fromiter((t for t, added in last.items() if added), dtype=np.int64)
            if len(gone):
                entry.index.remove(gone)
            loaded = self._load(entry, uow.templates.vectors_of(np.sort(new), entry.space))
            entry.position = changes[-1].id
            entry.snapshot_changes += len(last)
            logger.debug("index %s caught up to change %d: %d removed, %d added",
                         index_name(entry.gallery_id, entry.space.key), entry.position,
                         len(gone), loaded)

    @contextmanager
    def _forgotten_on_failure(self, key: tuple[int, str], entry: _Entry) -> Iterator[None]:
        """An index whose update failed half-way is dropped, to be rebuilt from the store
        on the next search, rather than answer from a state nobody knows."""
        try:
            yield
        except BaseException:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
                    logger.error("index %s failed to update; it will be rebuilt from the "
                                 "store", index_name(*key))
            raise

    @staticmethod
    def _load(entry: _Entry, pages: Iterable[VectorBatch]) -> int:
        loaded = 0
        for batch in pages:
            entry.index.add(batch.ids, batch.vectors)
            loaded += len(batch.ids)
        return loaded

    def _build(self, gallery_id: int, space: ModelSpace) -> VectorIndex:
        name = index_name(gallery_id, space.key)
        return build_index(self._settings, space.dimension, self._data_dir, name)

    def _new_entry(self, gallery_id: int, space: ModelSpace) -> _Entry:
        """A new, empty entry in the dict (the caller holds the catalog lock)."""
        entry = _Entry(self._build(gallery_id, space), space, gallery_id)
        self._entries[(gallery_id, space.key)] = entry
        return entry

    def added(
        self, gallery_id: int, space: ModelSpace, ids: Sequence[int], vectors: Matrix
    ) -> None:
        """Templates this process just committed; searchable before the next refresh."""
        key = (gallery_id, space.key)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not ids or self._shared:  # shared: the log is applied once
            return
        with entry.lock, self._forgotten_on_failure(key, entry):
            entry.index.add(np.asarray(ids, dtype=np.int64), vectors)

    def removed(self, gallery_id: int, ids: Sequence[int]) -> None:
        """Templates this process just deleted; gone from every space's index at once."""
        with self._lock:
            entries = [(k, e) for k, e in self._entries.items() if k[0] == gallery_id]
        if self._shared:
            return
        for key, entry in entries:
            if ids:
                with entry.lock, self._forgotten_on_failure(key, entry):
                    entry.index.remove(np.asarray(ids, dtype=np.int64))

    def drop(self, gallery_id: int) -> None:
        """Forget every index of a gallery (deleted, or re-embedded with another pack)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == gallery_id]:
                del self._entries[key]
        # Deleted, or re-embedded: its snapshots describe templates that are gone.
        remove_snapshots(self._data_dir, index_name(gallery_id, ""))
        if self._shared:  # the next first load rebuilds the collection from the store
            with self._store.unit(write=True) as uow:
                uow.session.execute(delete(SharedIndexRow).where(
                    SharedIndexRow.name.startswith(index_name(gallery_id, ""),
                                                   autoescape=True)))

    def count(self, gallery_id: int, space: ModelSpace) -> int | None:
        """How many entries the in-memory index holds, or None when it is not built."""
        with self._lock:
            entry = self._entries.get((gallery_id, space.key))
        return None if entry is None else entry.index.count()
