"""The regency uplink and the national ingester over a real nats-server (JetStream, MQTT) into a real
PostgreSQL: exactly once, in order, through link cuts, a national store restored from a backup,
an ingester handing over to its standby, and a regency publishing under another's code."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from segel import store
from segel.config import NationalSection
from segel.custody import alerts as al
from segel.national import capture, codes, local, settings, uplink
from segel.national import federation as fed
from segel.national.ingest import Ingester

from tests.national.proxy import Proxy

pytestmark = pytest.mark.slow


def regency_db(path: Path) -> sqlite3.Connection:
    conn = store.connect(path)
    capture.install(conn)
    return conn


def raise_alerts(conn: sqlite3.Connection, n: int, start: int = 0, boxes: int = 4) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for i in range(start, start + n):
        al.raise_alert(conn, kind="low_battery" if i % 2 else "seal_unauthorised", subject=f"B{i % boxes}",
                       key=f"k{i}", now=1000.0 + i, device_time=1000.0 + i, box=f"B{i % boxes}")
    conn.execute("COMMIT")


def confirmed(conn: sqlite3.Connection, n: int):  # type: ignore[no-untyped-def]
    """At least n items recorded, and everything recorded confirmed (a summary may come first)."""
    return lambda s: s.acked >= n and s.acked == capture.last_seq(conn)


def section(cluster: local.NatsCluster, code: str = "64.08", urls: list[str] | None = None, **kw: object) -> NationalSection:
    user = codes.user(code)
    return NationalSection(regency=code, name="Kutai Timur", urls=urls or cluster.urls(user, cluster.password(user)),
                           resend_after_s=2.0, summary_interval_s=3600, keepalive_s=2, reconnect_max_s=1, **kw)  # type: ignore[arg-type]


def ingester(cluster: local.NatsCluster, dsn: str, name: str = "ingest-1") -> Ingester:
    cfg = settings.load(None, env={}, overrides={
        "ingest.urls": cluster.urls(fed.INGEST_USER, cluster.password(fed.INGEST_USER)), "store.dsn": dsn,
        "ingest.name": name, "ingest.status_interval_s": 0.5})
    ing = Ingester(cfg).start()
    assert ing.wait_until(lambda s: s.connected, 30), ing.stats
    return ing


@pytest.fixture
def national(nats_node: local.NatsCluster, dsn: str) -> Iterator[tuple[local.NatsCluster, str, Ingester]]:
    ing = ingester(nats_node, dsn)
    yield nats_node, dsn, ing
    ing.stop()


def stored(dsn: str, code: str = "64.08") -> list[tuple[int, str, str]]:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT seq, kind, subject FROM items WHERE regency = %s ORDER BY seq", (code,)).fetchall()


def outbox(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
    return [(i["seq"], i["kind"], i["subject"]) for i in capture.items(conn)]


def test_items_reach_the_national_store_exactly_once(tmp_path: Path, national: tuple) -> None:
    cluster, dsn, ing = national
    conn = regency_db(tmp_path / "r.db")
    raise_alerts(conn, 120)
    up = uplink.Uplink(tmp_path / "r.db", section(cluster, batch_items=50, window=100)).start()
    try:
        assert up.wait_until(confirmed(conn, 120), 30), up.stats
        raise_alerts(conn, 30, start=120)  # while connected
        assert up.wait_until(confirmed(conn, 150), 30), up.stats
    finally:
        up.stop()
    assert stored(dsn) == outbox(conn)
    assert up.stats.messages >= 3  # a window of 100 and batches of 50
    assert capture.get_state(conn, "acked") == str(capture.last_seq(conn))  # saved for the next start
    deadline = time.monotonic() + 10
    while True:  # the ingester saves its figures every status_interval_s
        with psycopg.connect(dsn) as c:
            st = c.execute("SELECT messages, items, lag_p99_ms FROM ingest_status").fetchone()
        if (st is not None and st[1] >= 150) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert st is not None and st[1] >= 150 and st[2] is not None


def test_a_regency_cannot_publish_under_another_code(tmp_path: Path, national: tuple) -> None:
    cluster, dsn, ing = national
    user = codes.user("64.08")
    cl = paho.Client(CallbackAPIVersion.VERSION2, client_id="intruder", protocol=paho.MQTTv311)
    cl.username_pw_set(user, cluster.password(user))
    granted: list = []
    cl.on_subscribe = lambda c, u, mid, rcs, p: granted.extend(rcs)
    cl.connect("127.0.0.1", cluster.spec.nodes[0].mqtt_port)
    cl.loop_start()
    try:
        cl.subscribe(codes.receipt_topic("64.01"), qos=0)  # nor may it read another regency's receipts
        deadline = time.monotonic() + 10
        while not granted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert granted and granted[0].is_failure
        from segel.national import model

        fake = model.encode("64.01", "Paser", time.time(), ['{"seq":1,"kind":"summary","subject":null,"at":1,'
                                                            '"committed":1,"body":{"districts":{}}}'])
        cl.publish(codes.up_topic("64.01"), fake, qos=1).wait_for_publish(10)
    finally:
        cl.loop_stop()
        cl.disconnect()
    log = cluster.nodes[0].log
    deadline = time.monotonic() + 10
    while "Publish Violation" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(ln for ln in log.read_text().splitlines() if "Publish Violation" in ln)
    assert f'User "{user}"' in line and codes.subject(codes.up_topic("64.01")) in line
    time.sleep(1.0)
    assert stored(dsn, "64.01") == []


def test_a_cut_link_delays_items_and_loses_none(tmp_path: Path, national: tuple) -> None:
    cluster, dsn, ing = national
    conn = regency_db(tmp_path / "r.db")
    proxy = Proxy(cluster.spec.nodes[0].mqtt_port)
    user = codes.user("64.08")
    url = f"mqtt://{user}:{cluster.password(user)}@127.0.0.1:{proxy.port}"
    up = uplink.Uplink(tmp_path / "r.db", section(cluster, urls=[url])).start()
    try:
        raise_alerts(conn, 20)
        assert up.wait_until(confirmed(conn, 20), 30), up.stats
        proxy.cut(silent=True)  # the link goes dark: no FIN, no refusal, nothing
        raise_alerts(conn, 200, start=20)  # the regency goes on working
        assert up.wait_until(lambda s: not s.connected, 15), "the uplink never noticed the dead link"
        assert up.stats.acked == len(stored(dsn)) >= 20
        proxy.restore()
        assert up.wait_until(confirmed(conn, 220), 40), up.stats
    finally:
        up.stop()
        proxy.close()
    assert stored(dsn) == outbox(conn)
    assert up.stats.connects >= 2


def test_a_national_store_restored_from_a_backup_is_filled_again(tmp_path: Path, national: tuple) -> None:
    cluster, dsn, ing = national
    conn = regency_db(tmp_path / "r.db")
    raise_alerts(conn, 50)
    up = uplink.Uplink(tmp_path / "r.db", section(cluster)).start()
    try:
        assert up.wait_until(confirmed(conn, 50), 30), up.stats
        with psycopg.connect(dsn) as c:  # the store as it was at item 30
            c.execute("DELETE FROM items WHERE regency = '64.08' AND seq > 30")
            c.execute("UPDATE regencies SET applied = 30 WHERE code = '64.08'")
        raise_alerts(conn, 5, start=50)  # the next item shows the gap: its receipt says 30
        assert up.wait_until(lambda s: s.rewinds == 1 and confirmed(conn, 55)(s), 30), up.stats
    finally:
        up.stop()
    assert stored(dsn) == outbox(conn)


def test_a_standby_ingester_takes_over(tmp_path: Path, nats_node: local.NatsCluster, dsn: str) -> None:
    first = ingester(nats_node, dsn, name="ingest-ha")
    cfg = settings.load(None, env={}, overrides={
        "ingest.urls": nats_node.urls(fed.INGEST_USER, nats_node.password(fed.INGEST_USER)), "store.dsn": dsn,
        "ingest.name": "ingest-ha"})
    second = Ingester(cfg).start()
    conn = regency_db(tmp_path / "r.db")
    up = uplink.Uplink(tmp_path / "r.db", section(nats_node)).start()
    try:
        assert second.wait_until(lambda s: s.standby, 10)
        raise_alerts(conn, 30)
        assert up.wait_until(confirmed(conn, 30), 30), up.stats
        first.stop()  # its node is switched off
        raise_alerts(conn, 30, start=30)
        assert second.wait_until(lambda s: s.connected and not s.standby, 30), second.stats
        assert up.wait_until(confirmed(conn, 60), 40), up.stats
    finally:
        up.stop()
        first.stop()
        second.stop()
    assert stored(dsn) == outbox(conn)
    assert second.stats.items > 0


def test_items_the_bus_dropped_are_sent_again(tmp_path: Path, dsn: str) -> None:
    """Every item sent, none confirmed: a fresh national tier whose ingester has never subscribed
    takes the messages (PUBACK) and keeps none. The uplink sends them again until the store has them."""
    cluster = local.NatsCluster.create(tmp_path / "nats", [fed.Regency("64.08", "Kutai Timur")], n=1).start()
    conn = regency_db(tmp_path / "r.db")
    raise_alerts(conn, 40)
    up = uplink.Uplink(tmp_path / "r.db", section(cluster)).start()
    ing = None
    try:
        assert up.wait_until(lambda s: s.items_sent >= 40, 20), up.stats
        time.sleep(1.0)
        assert up.stats.acked == 0
        ing = ingester(cluster, dsn)
        assert up.wait_until(confirmed(conn, 40), 30), up.stats
        assert up.stats.resends >= 1
    finally:
        up.stop()
        if ing is not None:
            ing.stop()
        cluster.stop()
    assert stored(dsn) == outbox(conn)


def test_a_national_store_outage_delays_items_and_loses_none(tmp_path: Path, nats_node: local.NatsCluster) -> None:
    pg = local.Postgres.create().start()
    ing = ingester(nats_node, pg.dsn, name="ingest-outage")
    conn = regency_db(tmp_path / "r.db")
    up = uplink.Uplink(tmp_path / "r.db", section(nats_node, code="64.01")).start()
    try:
        raise_alerts(conn, 30)
        assert up.wait_until(confirmed(conn, 30), 30), up.stats
        assert pg.proc is not None
        pg.proc.stop()  # the national store goes away
        raise_alerts(conn, 30, start=30)
        time.sleep(4)
        assert up.stats.acked < capture.last_seq(conn)  # nothing confirmed while the store is down
        assert ing.wait_until(lambda s: s.store_errors > 0, 20), ing.stats
        pg.proc.start(30)
        assert up.wait_until(confirmed(conn, 60), 60), (up.stats, ing.stats)
        assert stored(pg.dsn, "64.01") == outbox(conn)
    finally:
        up.stop()
        ing.stop()
        pg.stop()


def test_tls_on_the_national_bus(tmp_path: Path, dsn: str) -> None:
    """The production setting: MQTT over TLS with the national CA; a regency with another CA refuses the node."""
    import shutil

    from tests.deploy.tlsutil import make_ca, make_server_cert

    tls = tmp_path / "tls"
    tls.mkdir()
    ca, ca_key, ca_cert = make_ca(tls, "Segel national CA")
    crt, key = make_server_cert(tls, ca_key, ca_cert)
    shutil.copy(crt, tls / "n1.crt")
    shutil.copy(key, tls / "n1.key")
    cluster = local.NatsCluster.create(tmp_path / "nats", [fed.Regency("64.08", "Kutai Timur")], n=1, tls_dir=tls).start()
    cfg = settings.load(None, env={}, overrides={
        "ingest.urls": cluster.urls(fed.INGEST_USER, cluster.password(fed.INGEST_USER)), "store.dsn": dsn,
        "ingest.ca_file": str(ca)})
    ing = Ingester(cfg).start()
    conn = regency_db(tmp_path / "r.db")
    raise_alerts(conn, 10)
    other = tmp_path / "other"
    other.mkdir()
    wrong_ca, _, _ = make_ca(other, "Not the national CA")
    bad = uplink.Uplink(tmp_path / "r.db", section(cluster, ca_file=str(wrong_ca))).start()
    up = None
    try:
        assert ing.wait_until(lambda s: s.connected, 30), ing.stats
        assert bad.wait_until(lambda s: "certificate verify failed" in s.last_error, 20), bad.stats
        assert bad.stats.acked == 0
        bad.stop()
        up = uplink.Uplink(tmp_path / "r.db", section(cluster, ca_file=str(ca))).start()
        assert up.wait_until(confirmed(conn, 10), 30), up.stats
        assert cluster.urls("x", "y")[0].startswith("mqtts://")
    finally:
        bad.stop()
        if up is not None:
            up.stop()
        ing.stop()
        cluster.stop()
    assert stored(dsn) == outbox(conn)
