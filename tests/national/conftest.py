"""Real servers for the national tests: PostgreSQL (one per module, a fresh database per test)
and NATS (a single node with JetStream and MQTT, or the three-node cluster), on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from segel.national import federation as fed
from segel.national import local

REGENCIES = [fed.Regency("64.08", "Kabupaten Kutai Timur"), fed.Regency("64.01", "Kabupaten Paser"),
             fed.Regency("64.72", "Kota Samarinda"), fed.Regency("63.01", "Kabupaten Tanah Laut"),
             fed.Regency("73.71", "Kota Makassar")]
_n = itertools.count()


@pytest.fixture(scope="module")
def postgres() -> Iterator[local.Postgres]:
    pg = local.Postgres.create().start()
    yield pg
    pg.stop()


@pytest.fixture
def dsn(postgres: local.Postgres) -> str:
    """A fresh, empty national database."""
    name = f"t{next(_n)}"
    with psycopg.connect(postgres.dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return postgres.dsn.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def nats_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.NatsCluster]:
    """One nats-server (JetStream, MQTT) with the five regencies' accounts and the ingester's."""
    c = local.NatsCluster.create(Path(tmp_path_factory.mktemp("nats")), REGENCIES, n=1).start()
    yield c
    c.stop()
