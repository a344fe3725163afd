"""Choosing the vector index from configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from frvs.config.settings import Settings
from frvs.core.errors import ConfigurationError, PackUnavailableError
from frvs.storage.index import factory
from frvs.storage.index.exact import ExactIndex
from frvs.storage.index.factory import build_index, index_name


def test_exact_is_the_default() -> None:
    assert Settings().index.type == "exact"
    assert isinstance(build_index(Settings().index, 4, Path("."), "x"), ExactIndex)


def test_the_index_type_is_a_discriminated_union() -> None:
    assert Settings(index={"type": "faiss", "options": {"m": 16}}).index.type == "faiss"
    pq = Settings(index={"type": "faiss_pq", "options": {"candidates": 500}}).index
    assert pq.type == "faiss_pq"
    with pytest.raises(ValueError, match="type"):
        Settings(index={"type": "annoy"})


def test_store_url_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).store_url() == f"sqlite:///{tmp_path / 'frvs.db'}"
    url = "postgresql+psycopg://u@h/db"
    assert Settings(database_url=url).store_url() == url


def test_index_names_are_safe_identifiers() -> None:
    name = index_name(7, "yunet_sface@2023mar-2021dec-int8bq/128/cosine")
    assert name == "g7_yunet_sface_2023mar_2021dec_int8bq_128_cosine"


@pytest.mark.parametrize(("kind", "module", "extra"), [
    ("faiss", "faiss", "faiss"), ("faiss_pq", "faiss", "faiss"), ("milvus", "pymilvus", "milvus")])
def test_a_missing_backend_says_how_to_install_it(
        kind: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(index={"type": kind}).index  # the settings load without the library
    monkeypatch.setitem(sys.modules, module, None)  # ``import <module>`` now fails
    with pytest.raises(ConfigurationError, match=rf"pip install 'frvs\[{extra}\]'"):
        build_index(settings, 4, Path("."), "x")


def test_backend_options_are_typed_and_checked_when_the_configuration_loads() -> None:
    pq = Settings(index={"type": "faiss_pq", "options": {"candidates": 500}}).index
    assert isinstance(pq, factory.FaissPQIndexSettings)
    assert pq.options.candidates == 500
    with pytest.raises(ValueError, match="candidatez"):
        Settings(index={"type": "faiss_pq", "options": {"candidatez": 500}})
    with pytest.raises(ValueError, match="collection"):  # chosen per (gallery, space)
        Settings(index={"type": "milvus", "options": {"collection": "x"}})


@pytest.mark.parametrize("kind", ["faiss", "faiss_pq", "milvus"])
def test_optional_backends_build_empty_indexes(kind: str, tmp_path: Path) -> None:
    settings = Settings(index={"type": kind}).index
    try:
        index = build_index(settings, 4, tmp_path, "g1_space")
    except (PackUnavailableError, ConfigurationError) as exc:
        pytest.skip(f"{kind} not installed: {exc}")
    index.add([5], np.eye(4, dtype=np.float32)[:1])
    again = build_index(settings, 4, tmp_path, "g1_space")  # rebuilt from the store: empty
    assert again.count() == 0
