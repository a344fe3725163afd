"""Choosing the vector index from the configuration.

The ``index`` settings section is a union discriminated by ``type``: ``exact`` (NumPy,
in memory, the default), ``faiss_pq`` (a FAISS fast-scan of compressed codes with exact
re-ranking: the one for millions of templates), ``faiss`` (HNSW) or ``milvus``
(pymilvus; Milvus Lite in a file, or a Milvus server). Implementations are imported by module
path only when chosen, so a missing optional backend fails here, with the fix in the
message, and never at import time.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from frvs.core.errors import PackUnavailableError
from frvs.storage.index.base import VectorIndex
from frvs.storage.index.exact import ExactIndex


class _IndexSection(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExactIndexSettings(_IndexSection):
    """Brute force over every template: exact, no build time, O(n) a query.

    Right up to a few million templates (9 ms a query at 1M on two cores); beyond that
    choose ``faiss_pq``.
    """

    type: Literal["exact"] = "exact"


class FaissPQIndexSettings(_IndexSection):
    """FAISS fast-scan over compressed codes, best candidates re-scored exactly.

    3.5 ms a query at 10M templates on two cores, finding the mate as often as exact
    search (benchmarks/search.py); 530 bytes a 128-d template.
    """

    type: Literal["faiss_pq"] = "faiss_pq"
    options: dict[str, Any] = Field(
        default_factory=dict,
        title="Scan options",
        description="Passed to FaissPQIndex (candidates, shards, train_size, "
        "subquantizer_dims, rebuild_ratio, lists, probes, snapshot_min_size); see "
        "frvs.storage.index.faiss_pq.FaissPQOptions for each trade-off.",
    )


class FaissIndexSettings(_IndexSection):
    """FAISS HNSW in this process: approximate, and weak on face galleries.

    Face templates of different people spread like random directions, which graphs
    handle poorly: at 1M it found the mate 88% as often as exact search at efSearch
    1024. Kept for galleries with real neighbourhood structure; prefer ``faiss_pq``.
    """

    type: Literal["faiss"] = "faiss"
    options: dict[str, Any] = Field(
        default_factory=dict,
        title="HNSW options",
        description="Passed to FaissIndex (m, ef_construction, ef_search, rebuild_ratio); "
        "see frvs.storage.index.faiss_index.FaissOptions for each trade-off.",
    )


class MilvusIndexSettings(_IndexSection):
    """Milvus: Milvus Lite in a local file by default, or a Milvus server by URI."""

    type: Literal["milvus"] = "milvus"
    path: str | None = Field(
        None,
        title="Milvus Lite file or server URI",
        description="A '.db' file for embedded Milvus Lite (default <data_dir>/index/milvus.db) "
        "or 'http://host:19530' for a Milvus cluster that outgrows one machine.",
    )
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Passed to MilvusIndex as keyword options.")
    shared: bool = Field(
        False, title="Collections shared by the replicas",
        description="With a Milvus server (path 'http://...'), every replica searches the "
        "same collection per (gallery, space) instead of each building its own: the first "
        "replica loads it from the store, and from then on whichever replica searches first "
        "applies the gallery's change log to it, one at a time. Off: each process drops "
        "and rebuilds its collection at start (right for Milvus Lite, one process).")


AnyIndexSettings = (
    ExactIndexSettings | FaissPQIndexSettings | FaissIndexSettings | MilvusIndexSettings
)
IndexSettings = Annotated[AnyIndexSettings, Field(discriminator="type")]

_IMPLEMENTATIONS = {
    "faiss": ("frvs.storage.index.faiss_index", "FaissIndex", "faiss"),
    "faiss_pq": ("frvs.storage.index.faiss_pq", "FaissPQIndex", "faiss"),
    "milvus": ("frvs.storage.index.milvus_index", "MilvusIndex", "milvus"),
}


def _implementation(kind: str) -> Any:
    module_name, class_name, extra = _IMPLEMENTATIONS[kind]
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise PackUnavailableError(
            f"the {kind!r} vector index is not available ({exc}); install it with "
            f"pip install 'frvs[{extra}]' or set index.type: exact"
        ) from exc


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
    if isinstance(settings, ExactIndexSettings):
        return ExactIndex(dimension)
    if isinstance(settings, FaissIndexSettings | FaissPQIndexSettings):
        cls = _implementation(settings.type)
        index: VectorIndex = cls(dimension, **settings.options)
        return index
    cls = _implementation("milvus")
    location = settings.path or str(data_dir / "index" / "milvus.db")
    where = {"uri": location} if "://" in location else {"path": Path(location)}
    milvus = cls(dimension, collection=name, **where, **settings.options)
    if settings.shared:  # kept in step with the store by the catalog, never rebuilt here
        shared: VectorIndex = milvus
        return shared
    # The store is the truth and every index is rebuilt from it: a collection left from
    # an earlier run may hold templates deleted since, and the port cannot list them.
    milvus._client.drop_collection(name)
    fresh: VectorIndex = cls(dimension, collection=name, **where, **settings.options)
    return fresh


def is_shared(settings: AnyIndexSettings) -> bool:
    """Whether the replicas share one index per (gallery, space) (a Milvus server)."""
    return isinstance(settings, MilvusIndexSettings) and settings.shared
