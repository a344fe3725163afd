"""Search in Milvus (the ``milvus`` extra): embedded Milvus Lite or a Milvus server.

With ``path`` the index is a Milvus Lite file in the data directory (one process may open
it); with ``uri`` the same code drives a standalone server or a cluster, which is the way
out when a gallery outgrows one machine's memory. Every write is followed by searches at
``consistency_level="Strong"``, so a template is findable as soon as ``add`` returns and
gone as soon as ``remove`` returns. Re-adding an id is an upsert.

``FLAT`` (exact) is the default index type because Milvus Lite's only goal here is
small, embedded galleries; a server deployment sets ``index_type="HNSW"`` with
``index_params={"M": 32, "efConstruction": 80}`` and ``search_params={"ef": 64}``
(the trade-offs of ``frvs.storage.index.faiss_index.FaissOptions`` apply unchanged).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from frvs.core.errors import ConfigurationError, InvalidRecordError
from frvs.storage.index.base import IdArray, Matrix, SearchResult, check_vectors

_STRONG = "Strong"
# Milvus caps one search at 16384 results and one request at 64 MB.
_MAX_LIMIT = 16_384
_WRITE_BATCH = 4_096
_QUERY_BATCH = 1_024


def import_pymilvus() -> ModuleType:
    """The ``pymilvus`` module, or an error that says how to install it."""
    try:
        import pymilvus  # optional backend: imported only when chosen
    except ImportError as exc:
        raise ConfigurationError(
            "the milvus vector index needs pymilvus: pip install 'frvs[milvus]'"
        ) from exc
    module: ModuleType = pymilvus
    return module


class MilvusTuning(BaseModel):
    """How Milvus indexes and searches a collection (the ``index.options`` of the
    configuration); where the collection lives is ``MilvusOptions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field("", title="Server token", description="user:password or API key.")
    index_type: str = Field(
        "FLAT",
        title="Milvus index type",
        description="FLAT is exact and needs no training, right for Lite; HNSW or IVF_FLAT "
        "on a server trade a little recall for much faster search on millions.",
    )
    index_params: dict[str, int | float | str] = Field(
        default_factory=dict,
        title="Index build parameters",
        description="Passed to Milvus as is, e.g. {'M': 32, 'efConstruction': 80} for HNSW.",
    )
    search_params: dict[str, int | float | str] = Field(
        default_factory=dict,
        title="Search parameters",
        description="Passed to Milvus as is, e.g. {'ef': 64} for HNSW (higher: better "
        "recall, slower).",
    )


class MilvusOptions(MilvusTuning):
    """Where the collection lives and how Milvus indexes it."""

    path: Path | None = Field(
        None,
        title="Milvus Lite file",
        description="A local .db file run by embedded Milvus Lite. Simple, one process; "
        "exclusive with uri.",
    )
    uri: str | None = Field(
        None,
        title="Milvus server URI",
        description="e.g. http://milvus:19530; scales past one machine but is another "
        "service to run. Exclusive with path.",
    )
    collection: str = Field(
        "frvs_templates",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        title="Collection name",
        description="One collection per model space: vectors of different packs never mix.",
    )

    @model_validator(mode="after")
    def _one_location(self) -> MilvusOptions:
        if (self.path is None) == (self.uri is None):
            raise ValueError("set exactly one of path (Milvus Lite) and uri (server)")
        return self


class MilvusIndex:
    """Inner-product search in one Milvus collection; thread-safe, exact with FLAT."""

    def __init__(self, dimension: int, **options: Any) -> None:
        pymilvus = import_pymilvus()
        if dimension < 1:
            raise InvalidRecordError(f"dimension must be positive, got {dimension}")
        self._dimension = dimension
        self.options = MilvusOptions(**options)
        self._write_lock = threading.Lock()
        if self.options.path is not None:
            self.options.path.parent.mkdir(parents=True, exist_ok=True)
            self._client: Any = pymilvus.MilvusClient(str(self.options.path))
        else:
            self._client = pymilvus.MilvusClient(uri=self.options.uri, token=self.options.token)
        self._open_collection(pymilvus)

    @property
    def dimension(self) -> int:
        return self._dimension

    def add(self, ids: Sequence[int] | IdArray, vectors: Matrix) -> None:
        vecs = check_vectors(vectors, self._dimension)
        id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(id_arr) != len(vecs):
            raise InvalidRecordError(f"{len(id_arr)} ids for {len(vecs)} vectors")
        # One upsert must not carry an id twice; the last vector wins, as if added in turn.
        _, last_first = np.unique(id_arr[::-1], return_index=True)
        keep = np.sort(len(id_arr) - 1 - last_first)
        rows = [{"id": int(id_arr[i]), "vector": vecs[i]} for i in keep]
        with self._write_lock:
            for start in range(0, len(rows), _WRITE_BATCH):
                self._client.upsert(self.options.collection, rows[start : start + _WRITE_BATCH])

    def remove(self, ids: Sequence[int] | IdArray) -> None:
        id_list = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        with self._write_lock:
            for start in range(0, len(id_list), _WRITE_BATCH):
                chunk = id_list[start : start + _WRITE_BATCH]
                self._client.delete(self.options.collection, ids=chunk)

    def search(self, queries: Matrix, k: int) -> SearchResult:
        q = check_vectors(queries, self._dimension, "queries")
        n = q.shape[0]
        scores = np.full((n, max(k, 0)), -np.inf, dtype=np.float32)
        ids = np.full((n, max(k, 0)), -1, dtype=np.int64)
        if k <= 0 or n == 0:
            return SearchResult(scores, ids)
        limit = min(k, _MAX_LIMIT)
        params = {"metric_type": "IP", "params": dict(self.options.search_params)}
        for start in range(0, n, _QUERY_BATCH):
            hits = self._client.search(
                self.options.collection,
                data=list(q[start : start + _QUERY_BATCH]),
                limit=limit,
                output_fields=["id"],
                search_params=params,
                consistency_level=_STRONG,
            )
            for row, found in enumerate(hits, start=start):
                for col, hit in enumerate(found):
                    scores[row, col] = hit["distance"]
                    ids[row, col] = hit["id"]
        return SearchResult(scores, ids)

    def count(self) -> int:
        result = self._client.query(
            self.options.collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level=_STRONG,
        )
        return int(result[0]["count(*)"])

    def ids(self) -> IdArray:
        pages = self._client.query_iterator(
            self.options.collection, batch_size=_MAX_LIMIT, filter="", output_fields=["id"],
            consistency_level=_STRONG,
        )
        found: list[IdArray] = []
        try:
            while rows := pages.next():
                found.append(np.fromiter((row["id"] for row in rows), dtype=np.int64))
        finally:
            pages.close()
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)

    def reset(self) -> None:
        """Drop every vector (the collection is recreated): for rebuilding from the store."""
        with self._write_lock:
            self._client.drop_collection(self.options.collection)
            self._open_collection(import_pymilvus())

    def close(self) -> None:
        """Release the connection (and, for Milvus Lite, the file)."""
        self._client.close()

    def _open_collection(self, pymilvus: ModuleType) -> None:
        """Load the collection, creating it on first use; refuse one of another dimension."""
        name = self.options.collection
        if self._client.has_collection(name):
            fields = self._client.describe_collection(name)["fields"]
            stored = next(f for f in fields if f["name"] == "vector")["params"]["dim"]
            if int(stored) != self._dimension:
                raise InvalidRecordError(
                    f"Milvus collection {name} holds {stored}-d vectors, expected {self._dimension}"
                )
            self._client.load_collection(name)
            return
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
        schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=self._dimension)
        index_params = self._client.prepare_index_params()
        index_params.add_index(
            field_name="vector",
            index_type=self.options.index_type,
            metric_type="IP",
            params=dict(self.options.index_params),
        )
        self._client.create_collection(
            name, schema=schema, index_params=index_params, consistency_level=_STRONG
        )
