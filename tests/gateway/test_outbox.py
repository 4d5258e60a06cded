from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from segel import store
from segel.influx import outbox, schema
from segel.influx.writers import V1Writer, V2Writer, WriteError

from tests import servers

pytestmark = pytest.mark.slow


def lines(n: int, start: int = 0, field: str = "battery_mv") -> list[str]:
    now = int(time.time()) * 10**9
    return [schema.point("status", {"device": f"{i:06x}"}, {field: 3700 + i, "counter": i}, now + i) for i in range(start, start + n)]


def count_v1(srv, db: str = "segel") -> int:
    res = servers.influx_query(srv, "SELECT count(counter) FROM status", db)
    s = res["results"][0].get("series")
    return int(s[0]["values"][0][1]) if s else 0


def test_v1_drain_bisects_and_parks_a_type_conflict(tmp_path: Path, influxdb) -> None:
    conn = store.connect(tmp_path / "g.db")
    good = lines(50)
    # a field type conflict: counter as a string for one point, after the float/int ones exist
    bad = 'status,device=bad counter="oops" ' + str(int(time.time()) * 10**9)
    conn.execute("BEGIN")
    outbox.enqueue(conn, good[:20])
    conn.execute("COMMIT")
    d = outbox.Drainer(tmp_path / "g.db", V1Writer(influxdb.url, "segel", create_database=True), batch_size=16)
    d.drain_all()
    conn.execute("BEGIN")
    outbox.enqueue(conn, good[20:30] + [bad] + good[30:])
    conn.execute("COMMIT")
    assert d.drain_all() == 31
    assert outbox.depth(conn) == 0
    assert count_v1(influxdb) == 50
    [(_, line, reason, _)] = outbox.parked(conn)
    assert line == bad and "400" in reason and "conflict" in reason
    d.stop()


def test_v1_outage_keeps_everything_then_drains_exactly_once(tmp_path: Path, influxdb) -> None:
    conn = store.connect(tmp_path / "g.db")
    d = outbox.Drainer(tmp_path / "g.db", V1Writer(influxdb.url, "segel", create_database=True),
                       batch_size=100, min_backoff_s=0.05, max_backoff_s=0.2, idle_s=0.05).start()
    conn.execute("BEGIN")
    outbox.enqueue(conn, lines(100))
    conn.execute("COMMIT")
    deadline = time.time() + 10
    while outbox.depth(conn) and time.time() < deadline:
        time.sleep(0.05)
    influxdb.stop()
    conn.execute("BEGIN")
    outbox.enqueue(conn, lines(300, start=100))
    conn.execute("COMMIT")
    time.sleep(1.0)
    assert outbox.depth(conn) == 300 and d.stats.errors > 0
    influxdb.start()
    deadline = time.time() + 30
    while outbox.depth(conn) and time.time() < deadline:
        time.sleep(0.1)
    d.stop()
    assert outbox.depth(conn) == 0
    assert count_v1(influxdb) == 400


def test_writer_errors_are_classified(tmp_path: Path) -> None:
    w = V1Writer(f"http://127.0.0.1:{servers.free_port()}", "segel", timeout_s=2)
    with pytest.raises(WriteError) as e:
        w.write(lines(1))
    assert e.value.retryable and "unreachable" in str(e.value)


def test_v2_client_path_against_victoriametrics(tmp_path: Path, victoria) -> None:
    conn = store.connect(tmp_path / "g.db")
    conn.execute("BEGIN")
    outbox.enqueue(conn, lines(40))
    conn.execute("COMMIT")
    d = outbox.Drainer(tmp_path / "g.db", V2Writer(victoria.url, bucket="segel", org="-", token="t"), batch_size=7)
    assert d.drain_all() == 40
    assert outbox.depth(conn) == 0
    d.stop()
    urllib.request.urlopen(f"{victoria.url}/internal/force_flush").read()
    q = urllib.parse.quote('{__name__="status_counter"}')
    deadline = time.time() + 10
    while True:
        with urllib.request.urlopen(f"{victoria.url}/api/v1/export?match[]={q}") as r:
            series = [json.loads(x) for x in r.read().decode().splitlines() if x]
        if len(series) == 40 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert len(series) == 40
    assert sorted(int(s["values"][0]) for s in series) == list(range(40))


class CrashAfterWrite:
    """Writes to InfluxDB, then 'crashes' before the outbox can delete what was written."""

    def __init__(self, inner: V1Writer) -> None:
        self.inner = inner
        self.name = inner.name
        self.crash = True

    def write(self, lines: list[str]) -> None:
        self.inner.write(lines)
        if self.crash:
            raise SystemExit("power cut")

    def close(self) -> None:
        pass


def test_crash_between_write_and_delete_writes_nothing_twice(tmp_path: Path, influxdb) -> None:
    from segel.edge.payloads import uplink
    from segel.ingest.pipeline import Pipeline

    from tests.gateway.fleet import make_fleet

    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    p.process_batch([uplink(time.time(), "segel/up/000101", f.frame(0x101)) for _ in range(30)])
    w = CrashAfterWrite(V1Writer(influxdb.url, "segel", create_database=True))
    d = outbox.Drainer(f.db_path, w)
    with pytest.raises(SystemExit):
        d.drain_once()
    assert outbox.depth(f.conn) == 30  # InfluxDB has them, the outbox does not know
    w.crash = False
    assert d.drain_all() == 30 and outbox.depth(f.conn) == 0
    res = servers.influx_query(influxdb, "SELECT count(counter) FROM position", "segel")
    assert res["results"][0]["series"][0]["values"][0][1] == 30
    d.stop()
