"""Keys over time (issue 19): a revoked tracker is refused and alerts when it speaks; a rotation
gives new key epochs that trackers take at re-imaging while the old one is accepted for the
transition; a new fleet secret for a leaked one; labels carry the box and the current epoch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel import protocol, registry, store
from segel.cli import main
from segel.custody.judge import CustodyJudge
from segel.edge import topics
from segel.edge.payloads import uplink
from segel.ingest.pipeline import Pipeline
from segel.messages import RxMeta
from segel.places.index import PlaceIndex
from segel.provision import keys
from segel.provision.settings import init_fleet

from tests.gateway.fleet import make_fleet


def _pos(n: int) -> protocol.Position:
    return protocol.Position(0.5 + n * 1e-5, 117.5, protocol.Flag.FIX, 0.9, 0)


def test_a_revoked_tracker_is_refused_and_its_speaking_raises_an_alert(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    f.registry.pair("KT-7", 0x102, tps=None)
    judge = CustodyJudge(f.conn, PlaceIndex([]), {})
    p = Pipeline(f.conn, f.keyring, [judge])
    assert p.process(uplink(time.time(), topics.tracker_up("000102"), f.frame(0x102, _pos(1)))).accepted
    f.registry.revoke(0x102, "stolen at PPS Sangatta")
    time.sleep(2.1)  # the pipeline's registry cache (registry_ttl_s) sees the revocation
    meta = RxMeta(rssi=-101.0, snr=-3.0, base_id="base-17", bridge_id="ppk-1")
    r = p.process(uplink(time.time(), topics.bridge_up("ppk-1"), f.frame(0x102, _pos(2)), meta))
    assert r.accepted is None and r.rejected is not None and r.rejected.reason == "revoked"
    assert "stolen at PPS Sangatta" in r.rejected.detail and "base station base-17" in r.rejected.detail
    assert not r.downlinks  # no ack: a revoked tracker learns nothing
    [a] = [a for a in r.alerts if a["kind"] == "revoked_tracker_heard"]
    assert a["severity"] == "critical" and a["box"] == "KT-7" and "base-17" in a["message"]
    assert store.stats(f.conn)["rejected:revoked"] == 1
    # a forgery under the revoked id (no key) is still a forged frame, not the tracker speaking
    forged = bytearray(f.frame(0x102, _pos(3)))
    forged[-1] ^= 1
    assert p.process(uplink(time.time(), topics.tracker_up("000102"), bytes(forged))).rejected.reason == "bad_mac"
    f.registry.unrevoke(0x102)
    time.sleep(2.1)
    assert p.process(uplink(time.time(), topics.tracker_up("000102"), f.frame(0x102, _pos(4)))).accepted


def test_rotation_accepts_the_old_epoch_for_the_transition_then_only_the_new(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring, registry_ttl_s=0)
    old_keys = f.keys(0x101)
    assert p.process(uplink(time.time(), topics.tracker_up("000101"), f.frame(0x101, _pos(1), counter=40))).accepted
    [(dev, a, b)] = f.registry.rotate([0x101], transition_s=3600)
    assert (dev, a, b) == (0x101, 0, 1)
    # not yet re-imaged: its frames under epoch 0 are still accepted, acked under that key
    r = p.process(uplink(time.time(), topics.tracker_up("000101"), protocol.encode(old_keys, 0x101, 41, 1_800_000_000, _pos(41))))
    assert r.accepted and r.downlinks
    ack = protocol.verify_and_decode(old_keys, r.downlinks[0].frame)
    assert isinstance(ack.body, protocol.Ack) and 41 in ack.body.counters
    # re-imaged: epoch 1 counters start again at 1
    new_keys = protocol.DeviceKeys.from_device_key(f.keyring.device_key(0x101, 1))
    assert p.process(uplink(time.time(), topics.tracker_up("000101"), protocol.encode(new_keys, 0x101, 1, 1_800_000_010, _pos(2)))).accepted
    # from now on its old key is refused: a copy of its old image cannot speak for it
    r = p.process(uplink(time.time(), topics.tracker_up("000101"), protocol.encode(old_keys, 0x101, 42, 1_800_000_020, _pos(42))))
    assert r.rejected is not None and r.rejected.reason == "stale_key"
    # another tracker rotated with a transition already over: its old key is refused as a bad MAC
    f.registry.rotate([0x103], transition_s=0)
    epoch0 = protocol.DeviceKeys.from_device_key(f.keyring.device_key(0x103, 0))
    r = p.process(uplink(time.time(), topics.tracker_up("000103"), protocol.encode(epoch0, 0x103, 5, 1_800_000_000, _pos(5))))
    assert r.rejected is not None and r.rejected.reason == "bad_mac"


def test_keys_rotate_and_finish_commands_with_a_new_secret(tmp_path: Path) -> None:
    fleet = init_fleet(tmp_path / "fleet")
    run = CliRunner()
    r = run.invoke(main, ["provision", "--fleet", str(fleet.root), "--count", "2"])
    assert r.exit_code == 0, r.output
    old_secret = fleet.secret()
    r = run.invoke(main, ["keys", "rotate", "--fleet", str(fleet.root), "000101", "--new-secret"])
    assert r.exit_code == 2 and "--new-secret changes every tracker's key" in r.output
    r = run.invoke(main, ["keys", "rotate", "--fleet", str(fleet.root), "--all", "--new-secret", "--transition-days", "7"])
    assert r.exit_code == 0, r.output
    assert "000101  key epoch 0 -> 1" in r.output and "previous secret" in r.output
    assert fleet.secret() != old_secret
    assert keys.previous_secret_path(fleet).read_text().strip() == old_secret.hex()
    conn = store.connect(fleet.registry_db())
    assert registry.stored_fingerprint(conn) == registry.secret_fingerprint(fleet.secret())
    registry.check_previous_secret(conn, old_secret, "prev")
    import json
    cfg = json.loads(fleet.config_path("000101").read_text())
    assert cfg["key_epoch"] == 1 and cfg["key"] == protocol.derive_device_key(fleet.secret(), 0x101, 1).hex()
    r = run.invoke(main, ["keys", "rotate", "--fleet", str(fleet.root), "--all", "--new-secret"])
    assert r.exit_code == 1 and "finish that one first" in r.output
    r = run.invoke(main, ["keys", "finish", "--fleet", str(fleet.root)])
    assert r.exit_code == 1 and "2 tracker(s) not yet heard under their new key" in r.output
    r = run.invoke(main, ["keys", "finish", "--fleet", str(fleet.root), "--force"])
    assert r.exit_code == 0 and "cut off 2 tracker(s)" in r.output
    assert not keys.previous_secret_path(fleet).exists()
    assert all(d.prev_epoch is None for d in fleet.open_registry().devices())


def test_gateway_with_the_previous_secret_accepts_trackers_not_yet_reimaged(tmp_path: Path) -> None:
    fleet = init_fleet(tmp_path / "fleet")
    from segel.provision.devconfig import provision
    provision(fleet, 1)
    old = fleet.secret()
    keys.rotate(fleet, fleet.open_registry().devices(), 30, new_secret=True)
    conn = store.connect(fleet.registry_db())
    reg = registry.Registry(conn)
    with pytest.raises(registry.RegistryError, match="is not the secret the registry rotated away from"):
        registry.check_previous_secret(conn, fleet.secret(), "x")
    p = Pipeline(conn, registry.KeyRing(fleet.secret(), reg, previous_secret=old))
    frame = protocol.encode(protocol.DeviceKeys.from_device_key(protocol.derive_device_key(old, 0x101, 0)), 0x101, 1,
                            1_800_000_000, _pos(1))
    assert p.process(uplink(time.time(), topics.tracker_up("000101"), frame)).accepted
    without = Pipeline(conn, registry.KeyRing(fleet.secret(), reg))  # the gateway not given the old secret
    frame2 = protocol.encode(protocol.DeviceKeys.from_device_key(protocol.derive_device_key(old, 0x101, 0)), 0x101, 2,
                             1_800_000_000, _pos(2))
    assert without.process(uplink(time.time(), topics.tracker_up("000101"), frame2)).rejected.reason == "bad_mac"


def test_device_revoke_command(tmp_path: Path) -> None:
    fleet = init_fleet(tmp_path / "fleet")
    run = CliRunner()
    assert run.invoke(main, ["provision", "--fleet", str(fleet.root), "--count", "1"]).exit_code == 0
    r = run.invoke(main, ["device", "revoke", "--fleet", str(fleet.root), "000101", "--reason", "  "])
    assert r.exit_code == 1 and "say why" in r.output
    r = run.invoke(main, ["device", "revoke", "--fleet", str(fleet.root), "000101", "--reason", "lost, river crossing"])
    assert r.exit_code == 0 and "000101 revoked: lost, river crossing" in r.output, r.output
    assert fleet.open_registry().get(0x101).revoked_at is not None
    r = run.invoke(main, ["device", "revoke", "--fleet", str(fleet.root), "0009ff", "--reason", "x"])
    assert r.exit_code == 1 and "not registered" in r.output


def test_labels_stale_reprints_what_a_reimage_or_rotation_made_out_of_date(tmp_path: Path) -> None:
    fleet = init_fleet(tmp_path / "fleet")
    run = CliRunner()
    assert run.invoke(main, ["provision", "--fleet", str(fleet.root), "--count", "3"]).exit_code == 0
    out = str(tmp_path / "l.pdf")
    r = run.invoke(main, ["labels", "--fleet", str(fleet.root), "--stale", "-o", out])
    assert "3 labels" in r.output, r.output  # never printed
    r = run.invoke(main, ["labels", "--fleet", str(fleet.root), "--stale", "-o", out])
    assert "every printed label is up to date" in r.output
    r = run.invoke(main, ["provision", "--fleet", str(fleet.root), "--reimage", "000102"])
    assert "reprint with segel labels --stale" in r.output
    assert run.invoke(main, ["keys", "rotate", "--fleet", str(fleet.root), "000103"]).exit_code == 0
    r = run.invoke(main, ["labels", "--fleet", str(fleet.root), "--stale", "-o", out])
    assert r.exit_code == 0 and "2 labels on 1 page(s)" in r.output, r.output
    import subprocess
    text = subprocess.run(["python3", "-c", "import sys,zlib,re;d=open(sys.argv[1],'rb').read();"
                           "print(b''.join(zlib.decompress(s) for s in re.findall(rb'stream\\r?\\n(.*?)\\r?\\nendstream', d, re.S)"
                           " if s[:1]==b'x').decode('latin-1'))", out], capture_output=True, text=True).stdout
    assert "(SGL-000102) Tj" in text and "epoch 1" in text and "(SGL-000101) Tj" not in text
