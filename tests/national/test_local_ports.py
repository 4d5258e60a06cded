"""Servers started on this machine survive a port taken between picking it and binding it.

CI once failed when nats-server's monitor port, picked free, was taken by a client connection
before the node bound it; the other two nodes were left running and tripped a later test. Here a
real listener takes the port on purpose.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from segel.national import federation as fed
from segel.national import local

pytestmark = pytest.mark.skipif(local.shutil.which("nats-server") is None, reason="nats-server not installed")


@contextlib.contextmanager
def _hold(port: int) -> Iterator[None]:
    """What happens in real life: a client connection's local end is on the port."""
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.bind(("127.0.0.1", port))
        client.connect(server.getsockname())
        yield


def test_a_cluster_whose_port_is_taken_starts_again_on_new_ports(tmp_path: Path) -> None:
    c = local.NatsCluster.create(tmp_path / "nats", [fed.Regency("64.08", "Kutai Timur")], n=3)
    taken = c.spec.nodes[0].monitor_port
    with _hold(taken):
        try:
            c.start()
            assert all(p.alive for p in c.nodes)
            assert taken not in {n.monitor_port for n in c.spec.nodes}
            conf = (tmp_path / "nats" / "n1" / "nats-server.conf").read_text()
            assert f":{taken}" not in conf and f" {taken}\n" not in conf
        finally:
            c.stop()


def test_a_cluster_that_cannot_start_leaves_no_node_running(tmp_path: Path) -> None:
    c = local.NatsCluster.create(tmp_path / "nats", [fed.Regency("64.08", "Kutai Timur")], n=3)
    with _hold(c.spec.nodes[0].monitor_port), pytest.raises(local.LocalError, match="address already in use"):
        c.start(tries=1)
    assert all(p.proc is None for p in c.nodes)


def test_postgres_whose_port_is_taken_starts_on_another() -> None:
    pytest.importorskip("psycopg")
    pg = local.Postgres.create()
    taken = pg.port
    with _hold(taken):
        try:
            pg.start()
            assert pg.port != taken and str(taken) not in pg.dsn
            import psycopg

            with psycopg.connect(pg.dsn) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            pg.stop()
