"""`segel device set`: a command queued at the gateway rides on the next ack to the firmware's real
wake cycle (simulated LoRa path: the real pipeline answers each uplink into the tracker's receive
window), the tracker applies it and confirms it, the gateway shows it applied and the ledger says
who asked; a forged or replayed command is refused by the tracker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel import protocol
from segel.cli import main as cli
from segel.custody import build_judge, ledger
from segel.edge import topics
from segel.edge.payloads import uplink
from segel.ingest import commands
from segel.ingest.pipeline import Pipeline
from segel.messages import RxMeta
from segel.service import devices

from segelfw import config as fwconfig
from segelfw import cycle
from segelfw import protocol as P
from simhw import SimTracker
from tests.gateway.fleet import SECRET, make_fleet

T0 = 1_800_000_000
ROUTE = [(T0, 0.5069, 117.5453), (T0 + 86400, 0.6, 117.4)]
BOX = "64.08.04.2001-001-GUB"


class LoraPath:
    """Uplinks as a bridge publishes them (RxMeta), through the real pipeline; its downlinks go
    back into the tracker's radio 600 ms apart, as a base station sends them into the window."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.downlinks: list[bytes] = []
        self.extra: list[bytes] = []  # a test's own frames, delivered after the gateway's

    def __call__(self, packet: bytes, info: dict):
        res = self.pipe.process(uplink(info["t_ms"] / 1000, topics.bridge_up("br1"), bytes(packet),
                                       RxMeta(rssi=-95.0, snr=7.0, base_id="b00001", bridge_id="br1")))
        frames = [d.frame for d in res.downlinks] + self.extra
        self.extra = []
        self.downlinks += frames
        return [(600 * (i + 1), f) for i, f in enumerate(frames)]


@pytest.fixture()
def world(tmp_path: Path):
    f = make_fleet(tmp_path, [0x101])
    f.registry.pair(BOX, 0x101, tps="TPS-001")
    key = protocol.derive_device_key(SECRET, 0x101, 0)
    cfg = fwconfig.validate({"device_id": "000101", "key": key.hex(), "board": "tbeam-v1.1", "jitter_ms": 0})
    t = SimTracker(tmp_path / "dev", ROUTE, T0)
    path = LoraPath(Pipeline(f.conn, f.keyring, judges=[build_judge(f.conn)], clock=lambda: t.clock.now))
    t.radio.responder = path
    return f, cfg, t, path


def wake(t: SimTracker, cfg: dict) -> cycle.Cycle:
    c = cycle.Cycle(t.drivers(), cfg, board=t.board)
    c.run()
    t.deep_sleep()
    return c


def test_a_rearm_and_new_interval_ride_on_the_next_ack_and_are_confirmed(world) -> None:
    f, cfg, t, path = world
    Path(t.flash.path("rearm")).write_text("")  # the crew armed the seal at the warehouse
    wake(t, cfg)
    t.seal.schedule(t.clock.now + 60, "loop", True)  # opened at the TPS for the count, and closed
    t.seal.schedule(t.clock.now + 120, "loop", False)
    wake(t, cfg)
    wake(t, cfg)
    state = f.conn.execute("SELECT last_flags FROM device_state WHERE device_id = 0x101").fetchone()[0]
    assert state & protocol.Flag.TAMPER  # latched until someone re-arms

    target, cmd = devices.set_device(f.conn, BOX, "Siti (KPPS TPS 001)", interval_s=600, rearm=True, now=t.clock.now)
    assert target.device_id == 0x101 and cmd.state == commands.PENDING
    c = wake(t, cfg)
    assert c.downlinks["accepted"] >= 2 and c.policy.interval_s == 600
    done = commands.get(f.conn, cmd.id)
    assert done.state == commands.APPLIED, done
    assert done.applied == {"down_counter": done.down_counter, "interval_s": 600, "fix_timeout_s": 60, "mode": "tracking",
                            "sf": 10, "rearmed": True, "refused": []}
    # the next wake's frames carry no tamper flag, and come 10 minutes apart
    before = t.clock.now
    wake(t, cfg)
    assert 560 < t.clock.now - before < 700
    flags = f.conn.execute("SELECT last_flags FROM device_state WHERE device_id = 0x101").fetchone()[0]
    assert not flags & protocol.Flag.TAMPER
    # the custody ledger: who asked, and what the tracker confirmed, in the box's hash chain
    entries = ledger.export(f.conn, BOX)
    asked = [json.loads(e["body"]) for e in entries if e["event"] == "device_command"]
    assert asked == [{"command": cmd.id, "device": "000101", "requested_by": "Siti (KPPS TPS 001)", "interval_s": 600,
                      "fix_timeout_s": None, "sf": None, "mode": None, "rearm": True}]
    confirmed = [json.loads(e["body"]) for e in entries if e["event"] == "frame" and json.loads(e["body"]).get("k") == "applied"]
    assert confirmed and confirmed[0]["interval_s"] == 600 and confirmed[0]["result"] & P.A_REARMED
    assert ledger.verify(f.conn, BOX).ok


def test_a_forged_or_replayed_command_is_refused_by_the_tracker(world) -> None:
    f, cfg, t, path = world
    wake(t, cfg)
    devices.set_device(f.conn, "000101", "ops", mode="storage", now=t.clock.now)
    c = wake(t, cfg)
    assert c.policy.storage
    config_frames = [d for d in path.downlinks if d[0] & 0x0F == protocol.FrameType.CONFIG]
    assert config_frames
    devices.set_device(f.conn, "000101", "ops", mode="tracking", now=t.clock.now)
    wrong = protocol.DeviceKeys.from_device_key(bytes(32))  # someone without the fleet secret
    forged = protocol.encode(wrong, 0x101, 60000, 0, protocol.Config(30, 0, 0x04, 0))
    path.extra = [config_frames[-1], forged]  # a captured command played again, and a forged one
    c2 = wake(t, cfg)
    assert c2.downlinks["replayed"] >= 1 and c2.downlinks["bad"] >= 1
    assert not c2.policy.storage and c2.policy.interval_s == 300  # only the real, new command took effect


def test_the_gateway_refuses_what_the_tracker_would(world) -> None:
    f, *_ = world
    for kw, words in (({"sf": 12}, "dwell"), ({"interval_s": 10}, "30 to 86400"), ({"fix_timeout_s": 400, "interval_s": 300}, "shorter"),
                      ({}, "nothing to change")):
        with pytest.raises(devices.DeviceError, match=words):
            devices.set_device(f.conn, "000101", "ops", **kw)
    with pytest.raises(devices.DeviceError, match="neither a box nor a device id"):
        devices.set_device(f.conn, "no-such-box", "ops", rearm=True)
    with pytest.raises(devices.DeviceError, match="not registered"):
        devices.set_device(f.conn, "0000ff", "ops", rearm=True)
    assert commands.listing(f.conn) == []  # nothing half-queued


def test_a_newer_command_merges_over_a_pending_one(world) -> None:
    f, *_ = world
    _, a = devices.set_device(f.conn, BOX, "ops", rearm=True)
    _, b = devices.set_device(f.conn, BOX, "ops", interval_s=900)
    assert commands.get(f.conn, a.id).state == commands.SUPERSEDED
    assert (b.rearm, b.interval_s) == (True, 900)


def test_cli_set_and_commands(world, tmp_path: Path) -> None:
    f, cfg, t, path = world
    db = str(f.db_path)
    r = CliRunner().invoke(cli, ["device", "set", BOX, "--interval", "600", "--by", "Budi", "--db", db])
    assert r.exit_code == 0, r.output
    assert f"queued command 1 for box {BOX} (tracker 000101): interval 600 s" in r.output
    r = CliRunner().invoke(cli, ["device", "commands", BOX, "--db", db])
    assert "pending" in r.output and "by Budi: interval 600 s" in r.output and "WITA" in r.output
    wake(t, cfg)
    r = CliRunner().invoke(cli, ["device", "commands", "--db", db])
    assert "applied" in r.output and "interval 600 s, fix timeout 60 s, SF10, mode tracking" in r.output
    bad = CliRunner().invoke(cli, ["device", "set", "000101", "--sf", "12", "--by", "x", "--db", db])
    assert bad.exit_code == 1 and "SF12: 24-byte frames fit the 400 ms dwell limit only at SF7 to SF10" in bad.output
    js = CliRunner().invoke(cli, ["device", "commands", "000101", "--json", "--db", db])
    assert json.loads(js.output.splitlines()[0])["state"] == "applied"


@pytest.mark.micropython
def test_over_mqtt_with_the_firmware_on_micropython_and_a_real_broker(tmp_path: Path, mosquitto) -> None:
    """The depot path end to end: the tracker's real boot on real MicroPython joins the depot
    WiFi (stand-in) and talks MQTT over real TCP to a real Mosquitto; the real gateway service
    sends the queued command in front of its ack; the tracker applies and confirms it. A captured
    command played again and a forged one, published into the tracker's receive window, are refused."""
    import shutil
    import threading

    import paho.mqtt.client as paho
    from segel.service.gateway import Gateway

    from tests.firmware import test_mp_boot as mpb
    from tests.gateway.gwtest import load, setup, wait

    if shutil.which("node") is None or not (mpb.ROOT / "tools/mpy-node/node_modules/@micropython").is_dir():
        pytest.skip("node or the MicroPython WebAssembly port is missing: run scripts/setup.sh --test")
    cfg_path, fleet = setup(tmp_path, mosquitto.port, devices=1)
    fleet.registry.pair(BOX, 0x101, tps="TPS-001")
    gw = Gateway(load(cfg_path)).start()
    seen: list[tuple[str, bytes]] = []
    spy = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="spy")
    spy.on_message = lambda c, u, m: seen.append((m.topic, m.payload))
    spy.connect("127.0.0.1", mosquitto.port)
    spy.subscribe([("segel/down/000101", 1), ("segel/up/000101", 1)])
    spy.loop_start()
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 10)
        _, cmd = devices.set_device(fleet.conn, BOX, "Budi (gudang KPU)", interval_s=900, mode="storage")
        key = fleet.keyring.device_key(0x101, 0)
        dev = mpb.device(tmp_path / "dev", key=key.hex(), ack_window_ms=3000,
                         wifi={"ssid": "depot", "password": "pw", "host": "127.0.0.1", "port": mosquitto.port})
        out = mpb.boot(dev, {"ap": {"ssid": "depot", "key": "pw", "join_ms": 100}, "gateway": False}, net=True)
        mpb.assert_safe_sleep(out, max_ms=14_400_000)
        assert out["sent"] == [], "everything went over MQTT, nothing over LoRa"
        wait(lambda: commands.get(fleet.conn, cmd.id).state == commands.APPLIED, 15, "the command applied")
        applied = commands.get(fleet.conn, cmd.id).applied
        # in storage mode the interval in force is the storage interval (the 900 s apply when it tracks again)
        assert applied and applied["interval_s"] == 14400 and applied["mode"] == "storage" and applied["refused"] == []
        assert 14_000_000 < out["deepsleep_ms"] <= 14_400_000  # storage mode: the next status in 4 hours
        downs = [p for t, p in seen if t == "segel/down/000101"]
        captured = next(p for p in downs if p[0] & 0x0F == protocol.FrameType.CONFIG)

        # the next wake: a captured command played again and a forged one arrive in its window
        wrong = protocol.DeviceKeys.from_device_key(bytes(32))
        forged = protocol.encode(wrong, 0x101, 65000, 0, protocol.Config(30, 0, 0x08, 0))
        fired = threading.Event()

        def inject(c, u, m) -> None:
            seen.append((m.topic, m.payload))
            if m.topic == "segel/up/000101" and not fired.is_set():
                fired.set()
                c.publish("segel/down/000101", captured, 1)
                c.publish("segel/down/000101", forged, 1)

        spy.on_message = inject
        again = mpb.boot(dev, {"ap": {"ssid": "depot", "key": "pw", "join_ms": 100}, "gateway": False}, after=out, net=True)
        mpb.assert_safe_sleep(again, 1, max_ms=14_400_000)
        assert fired.is_set(), again["log"]
        assert "downlink dropped: replayed counter" in again["log"] and "downlink dropped: bad MAC" in again["log"]
        assert 14_000_000 < again["deepsleep_ms"] <= 14_400_000  # still storage: the forged "tracking" was refused
    finally:
        spy.loop_stop()
        spy.disconnect()
        gw.stop()


def test_a_tracker_in_storage_mode_is_not_called_silent_for_its_longer_interval(world) -> None:
    f, cfg, t, path = world
    judge = path.pipe.judges[0]
    wake(t, cfg)
    devices.set_device(f.conn, BOX, "gudang", mode="storage", now=t.clock.now)
    wake(t, cfg)
    assert commands.listing(f.conn)[0].applied["interval_s"] == cfg["storage_interval_s"]
    last = t.clock.now
    with f.conn:
        assert not [a for a in judge.on_tick(last + 3600, f.conn) if a["kind"] == "silent"]  # 1 h: expected quiet
    with f.conn:
        silent = [a for a in judge.on_tick(last + 3 * cfg["storage_interval_s"] + 600, f.conn) if a["kind"] == "silent"]
    assert len(silent) == 1 and "limit 720 min" in silent[0]["message"]
