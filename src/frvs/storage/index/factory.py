"""Choosing the vector index from the configuration.

Each backend is a plugin (``frvs.core.plugins``): its settings class below has a literal
``type``, typed ``options`` (the backend's own options model) and ``build``, which makes
an empty index for one (gallery, space). ``IndexSettings`` is their union, discriminated
by ``type``: ``exact`` (NumPy, in memory, the default), ``faiss_pq`` (a FAISS fast-scan
of compressed codes with exact re-ranking: the one for millions of templates), ``faiss``
(HNSW) or ``milvus`` (pymilvus; Milvus Lite in a file, or a Milvus server). Options are
checked when the configuration is loaded; the optional library (FAISS, pymilvus) is
imported only when an index is built, and a missing one says how to install it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from frvs.core.plugins import PluginSettings
from frvs.storage.index.base import VectorIndex
from frvs.storage.index.exact import ExactIndex
from frvs.storage.index.faiss_index import FaissIndex, FaissOptions
from frvs.storage.index.faiss_pq import FaissPQIndex, FaissPQOptions
from frvs.storage.index.milvus_index import MilvusIndex, MilvusTuning


@dataclass(frozen=True, slots=True)
class IndexSlot:
    """The one index a backend builds: its vectors' dimension, the data directory, and
    the (gallery, space)'s name (``index_name``)."""

    dimension: int
    data_dir: Path
    name: str


class ExactIndexSettings(PluginSettings):
    """Brute force over every template: exact, no build time, O(n) a query.

    Right up to a few million templates (9 ms a query at 1M on two cores); beyond that
    choose ``faiss_pq``.
    """

    type: Literal["exact"] = "exact"

    def build(self, slot: IndexSlot) -> VectorIndex:
        """A new, empty exact index."""
        return ExactIndex(slot.dimension)

    def shared_by_replicas(self) -> bool:
        """Each process keeps its own copy."""
        return False


class FaissPQIndexSettings(PluginSettings):
    """FAISS fast-scan over compressed codes, best candidates re-scored exactly.

    530 bytes a 128-d template; its figures at 1M and 10M are measured by
    benchmarks/search.py (README, "1:N search").
    """

    type: Literal["faiss_pq"] = "faiss_pq"
    options: FaissPQOptions = Field(
        default_factory=FaissPQOptions,
        title="Scan options",
        description="Passed to FaissPQIndex (candidates, shards, train_size, "
        "subquantizer_dims, rebuild_ratio, lists, probes, snapshot_min_size); see "
        "frvs.storage.index.faiss_pq.FaissPQOptions for each trade-off.",
    )

    def build(self, slot: IndexSlot) -> VectorIndex:
        """A new, empty fast-scan index (FAISS imported now)."""
        return FaissPQIndex(slot.dimension, **self.options.model_dump())

    def shared_by_replicas(self) -> bool:
        """Each process keeps its own copy."""
        return False


class FaissIndexSettings(PluginSettings):
    """FAISS HNSW in this process: approximate, and weak on face galleries.

    Face templates of different people spread like random directions, which graphs
    handle poorly: at 1M it found the mate 88% as often as exact search at efSearch
    1024. Kept for galleries with real neighbourhood structure; prefer ``faiss_pq``.
    """

    type: Literal["faiss"] = "faiss"
    options: FaissOptions = Field(
        default_factory=FaissOptions,
        title="HNSW options",
        description="m, ef_construction, ef_search, rebuild_ratio; see "
        "frvs.storage.index.faiss_index.FaissOptions for each trade-off.",
    )

    def build(self, slot: IndexSlot) -> VectorIndex:
        """A new, empty HNSW index (FAISS imported now)."""
        return FaissIndex(slot.dimension, **self.options.model_dump())

    def shared_by_replicas(self) -> bool:
        """Each process keeps its own copy."""
        return False


class MilvusIndexSettings(PluginSettings):
    """Milvus: Milvus Lite in a local file by default, or a Milvus server by URI."""

    type: Literal["milvus"] = "milvus"
    path: str | None = Field(
        None,
        title="Milvus Lite file or server URI",
        description="A '.db' file for embedded Milvus Lite (default <data_dir>/index/milvus.db) "
        "or 'http://host:19530' for a Milvus cluster that outgrows one machine.",
    )
    options: MilvusTuning = Field(
        default_factory=MilvusTuning,
        description="token, index_type, index_params, search_params; see "
        "frvs.storage.index.milvus_index.MilvusTuning.")
    shared: bool = Field(
        False, title="Collections shared by the replicas",
        description="With a Milvus server (path 'http://...'), every replica searches the "
        "same collection per (gallery, space) instead of each building its own: the first "
        "replica loads it from the store, and from then on whichever replica searches first "
        "applies the gallery's change log to it, one at a time. Off: each process drops "
        "and rebuilds its collection at start (right for Milvus Lite, one process).")

    def build(self, slot: IndexSlot) -> VectorIndex:
        """The collection ``name``: as it is when shared, else emptied (pymilvus imported
        now)."""
        location = self.path or str(slot.data_dir / "index" / "milvus.db")
        where = {"uri": location} if "://" in location else {"path": Path(location)}
        milvus = MilvusIndex(slot.dimension, collection=slot.name, **where,
                             **self.options.model_dump())
        if not self.shared:
            # The store is the truth and every index is rebuilt from it: a collection left
            # from an earlier run may hold templates deleted since, and the port cannot
            # list them.
            milvus.reset()
        return milvus

    def shared_by_replicas(self) -> bool:
        """Whether the replicas share one collection per (gallery, space)."""
        return self.shared


AnyIndexSettings = (
    ExactIndexSettings | FaissPQIndexSettings | FaissIndexSettings | MilvusIndexSettings
)
IndexSettings = Annotated[AnyIndexSettings, Field(discriminator="type")]


def index_name(gallery_id: int, space_key: str) -> str:
    """A name safe as a file stem or collection name for one (gallery, space) index."""
    return "g{}_{}".format(gallery_id, re.sub(r"[^A-Za-z0-9]+", "_", space_key).strip("_"))


def build_index(
    settings: AnyIndexSettings,
    dimension: int,
    data_dir: Path,
    name: str,
) -> VectorIndex:
    """A new, empty index of ``dimension`` for the (gallery, space) called ``name``."""
    return settings.build(IndexSlot(dimension, data_dir, name))


def is_shared(settings: AnyIndexSettings) -> bool:
    """Whether the replicas share one index per (gallery, space) (a Milvus server)."""
    return settings.shared_by_replicas()
