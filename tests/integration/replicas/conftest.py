"""Several real ``frvs serve`` replicas on one PostgreSQL database (skipped, visibly,
without a server on 127.0.0.1:5432 or ``FRVS_TEST_POSTGRES_URL``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from postgres import fresh_database
from replica_helpers import Cluster


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (``replicas_*``), dropped afterwards."""
    with fresh_database("replicas") as url:
        yield url


@pytest.fixture(scope="module")
def cluster_factory(postgres_database: str, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[Callable[[dict[str, str]], Cluster]]:
    clusters: list[Cluster] = []

    def make(extra_env: dict[str, str]) -> Cluster:
        folder = tmp_path_factory.mktemp("replicas")
        env = {"FRVS_DATABASE_URL": postgres_database, "FRVS_DATA_DIR": str(folder / "data"),
               **extra_env}
        cluster = Cluster(env, folder)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()
