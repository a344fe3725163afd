"""Several real ``frvs serve`` replicas on one PostgreSQL database (skipped, visibly,
without a server on 127.0.0.1:5432 or ``FRVS_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from replica_helpers import Cluster
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "FRVS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (``replicas_*``), dropped afterwards."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"replicas_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
