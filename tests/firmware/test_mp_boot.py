"""Every error ends in a safe sleep: the tracker's real boot (firmware/main.py) on real MicroPython
(the WebAssembly port), with each failure injected at the lowest layer (tests/firmware/mp/boot_mp.py).

Each test asserts what a board needs after any failure: deep sleep entered, the seal wake armed,
the RTC state saved (valid, with the wake counted), and the watchdog never left to fire.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from segel import protocol as gp
from simhw.gnss import nmea_sentence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNNER = ROOT / "tools" / "mpy-node" / "run.mjs"
# the firmware under test: FIRMWARE_DIR=<a checkout's firmware/> runs these tests against other code
FIRMWARE = Path(os.environ.get("SEGEL_FIRMWARE_DIR", ROOT / "firmware"))
KEY = bytes(range(32))
KEYS = gp.DeviceKeys.from_device_key(KEY)
NMEA = (nmea_sentence("GPGGA,080001.00,0030.00000,S,11706.00000,E,1,08,0.9,35.2,M,48.0,M,,")
        + nmea_sentence("GPGSA,A,3,02,05,12,15,18,21,24,25,29,,,,1.6,0.9,1.3")
        + nmea_sentence("GPRMC,080001.00,A,0030.00000,S,11706.00000,E,0.00,87.5,150127,,,A")).decode()
NO_FIX = nmea_sentence("GPGGA,080000.00,,,,,0,00,99.99,,,,,,").decode()
AXP192_BATT = {"0x34:0x78": 0xDD, "0x34:0x79": 0x08}  # 3899 mV
LOOP, LID = 13, 14  # tbeam-v1.1 seal pins

pytestmark = [pytest.mark.micropython, pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "tools/mpy-node/node_modules/@micropython").is_dir(),
    reason="node or the MicroPython WebAssembly port is missing: run scripts/setup.sh --test")]


def device(tmp: Path, board_id: str = "tbeam-v1.1", **over) -> Path:
    (tmp / "boards").mkdir(parents=True)
    shutil.copy(ROOT / "hardware" / "boards" / f"{board_id}.json", tmp / "boards")
    cfg = {"device_id": "000101", "key": KEY.hex(), "board": board_id, "jitter_ms": 0, "ack_window_ms": 500,
           "fix_timeout_s": 20}
    cfg.update(over)
    (tmp / "config.json").write_text(json.dumps(cfg))
    return tmp


def boot(work: Path, scenario: dict, after: dict | None = None, net: bool = False) -> dict:
    """One boot on MicroPython; `after`: the previous boot's result (RTC memory and flash carry
    over); `net`: real TCP (a real broker) and real time instead of the scripted broker."""
    sc = {"uart": [NMEA] * 3, "i2c": AXP192_BATT}
    if after is not None:
        sc.update({"rtc_hex": after["rtc_hex"], "flash": after["flash"], "reset_cause": 4, "wake_reason": 4,
                   "start": after["end_unix"]})
    sc.update(scenario)
    if net:
        sc["net"] = True
    (work / "scenario.json").write_text(json.dumps(sc))
    r = subprocess.run(["node", str(RUNNER), "--heap", str(4 << 20), *(["--net"] if net else []),
                        "--mount", f"{FIRMWARE}:/fw", "--mount", f"{HERE / 'standins'}:/standins",
                        "--mount", f"{HERE / 'mp'}:/mp", "--mount", f"{work}:/",
                        "--path", "/fw", "--path", "/standins", "--path", "/mp", str(HERE / "mp" / "boot_mp.py")],
                       capture_output=True, text=True, timeout=300)
    lines = r.stdout.splitlines()
    res = [ln for ln in lines if ln.startswith("RESULT ")]
    assert res, f"no result (exit {r.returncode}): {r.stderr[-3000:]}\n{r.stdout[-3000:]}"
    out = json.loads(res[-1][7:])
    out["log"] = "\n".join(ln for ln in lines if not ln.startswith("RESULT ")) + r.stderr
    return out


def rtc_state(out: dict) -> dict:
    raw = bytes.fromhex(out["rtc_hex"])
    assert raw[:3] == b"SG1", "RTC state not saved"
    (crc,) = struct.unpack(">I", raw[3:7])
    assert zlib.crc32(raw[7:]) & 0xFFFFFFFF == crc, "RTC state saved with a bad CRC"
    return json.loads(raw[7:])


def assert_safe_sleep(out: dict, wakes_before: int = 0, max_ms: int = 300_000) -> dict:
    assert not out["wdt_reset"], "the watchdog fired: the tracker hung\n" + out["log"]
    assert out["error"] is None, f"the boot ended in {out['error']} (the board would sit at the REPL)\n" + out["log"]
    assert out["deepsleep_ms"] is not None and 5_000 <= out["deepsleep_ms"] <= max_ms, out["log"]
    ext1 = out["wake"].get("ext1")
    assert ext1 is not None and sorted(ext1[0]) == [LOOP, LID] and ext1[1] is True, f"seal wake not armed: {out['wake']}"
    st = rtc_state(out)
    assert st.get("wakes", 0) == wakes_before + 1, st
    return st


def frames(out: dict) -> list:
    return [gp.verify_and_decode(KEYS, bytes.fromhex(h)) for h in out["sent"]]


def queued(out: dict) -> int:
    """Frames waiting on flash for an ack (the queue file's live FRAME records)."""
    from segelfw.queue import Queue

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "queue.bin"
        p.write_bytes(bytes.fromhex(out["flash"].get("queue.bin", "")))
        return len(Queue(str(p)))


NO_GATEWAY = {"gateway": False}


def test_a_normal_wake_on_micropython(tmp_path: Path) -> None:
    out = boot(device(tmp_path), {})
    st = assert_safe_sleep(out)
    assert [f.type.name for f in frames(out)] == ["POSITION", "STATUS"]
    assert st["fails"] == 0 and queued(out) == 0


def test_driver_build_failure_radio(tmp_path: Path) -> None:
    """The SX1276 does not answer (lora's silicon-version check raises): frames stay queued on
    flash, the tracker sleeps; the next wake with a working radio sends them."""
    work = device(tmp_path)
    out = boot(work, {"radio_fail_init": True, **NO_GATEWAY})
    assert_safe_sleep(out)
    assert out["sent"] == [] and queued(out) == 2 and "radio" in out["log"]
    again = boot(work, {}, after=out)
    assert_safe_sleep(again, 1)
    assert [f.header.counter for f in frames(again)][:2] == [0, 1]


def test_driver_build_failure_pmu(tmp_path: Path) -> None:
    """The PMU does not acknowledge on I2C: no battery reading, no rail switching, still a report."""
    out = boot(device(tmp_path), {"i2c_absent": [0x34]})
    assert_safe_sleep(out)
    st = [f for f in frames(out) if f.type.name == "STATUS"]
    assert st and st[0].body.battery_mv == 0


def test_gnss_failure(tmp_path: Path) -> None:
    """The GNSS UART fails (EIO): no fix, a heartbeat position, and the fix attempts back off."""
    out = boot(device(tmp_path), {"uart_error": True})
    st = assert_safe_sleep(out)
    pos = [f for f in frames(out) if f.type.name == "POSITION"]
    assert pos and not pos[0].body.flags & 1 and st["nofix"] == 1 and st["fix_wait"] == 1


def test_gnss_without_fix_backs_off(tmp_path: Path) -> None:
    work = device(tmp_path)
    out = boot(work, {"uart": [NO_FIX] * 40})
    st = assert_safe_sleep(out)
    assert st["nofix"] == 1 and out["awake_ms"] >= 20_000  # the whole fix timeout
    skip = boot(work, {"uart": [NO_FIX] * 40}, after=out)
    st2 = assert_safe_sleep(skip, 1)
    assert skip["awake_ms"] < 10_000 and st2["fix_wait"] == 0  # this wake skipped the GNSS


def test_radio_tx_never_finishes(tmp_path: Path) -> None:
    """TX done never comes (a dead DIO line): micropython-lib's sync send() would poll for ever."""
    out = boot(device(tmp_path), {"radio_tx_hang": True, **NO_GATEWAY})
    assert_safe_sleep(out)
    assert queued(out) == 2 and "transmission did not finish" in out["log"]


WIFI = {"ssid": "depot", "password": "pw", "host": "10.1.1.1", "mqtt_password": "secret"}


def test_wifi_not_in_range(tmp_path: Path) -> None:
    out = boot(device(tmp_path, wifi=WIFI), {"ap": {"ssid": "elsewhere"}})
    st = assert_safe_sleep(out)
    assert [f.type.name for f in frames(out)] == ["POSITION", "STATUS"]  # over LoRa instead
    assert st["wifi_fail"] == 1 and st["wifi_wait"] == 1
    assert out["wifi"][-1] == ["active", False], "WiFi left on"


@pytest.mark.parametrize("umqtt", [(1, 4, 0), (1, 6, 0)])
def test_mqtt_wrong_password(tmp_path: Path, umqtt: tuple) -> None:
    """The broker refuses the login (CONNACK 5): the tracker reports over LoRa and sleeps."""
    out = boot(device(tmp_path, wifi=WIFI), {"ap": {"ssid": "depot", "key": "pw"}, "umqtt_version": umqtt,
                                              "broker": {"mode": "refuse", "code": 5}})
    st = assert_safe_sleep(out)
    assert out["broker"]["connects"] == [["segel-000101", "000101", "secret"]]
    assert "not authorised" in out["log"] and st["wifi_fail"] == 1
    assert len(frames(out)) == 2 and out["wifi"][-1] == ["active", False]


@pytest.mark.parametrize("umqtt", [(1, 4, 0), (1, 6, 0)])
def test_broker_hangs(tmp_path: Path, umqtt: tuple) -> None:
    """The broker accepts TCP and never answers: umqtt.simple 1.4 has no connect timeout and
    1.6 sets none unless asked; only the firmware's socket timeout gets the tracker out."""
    out = boot(device(tmp_path, wifi=WIFI), {"ap": {"ssid": "depot", "key": "pw"}, "umqtt_version": umqtt,
                                              "broker": {"mode": "hang"}})
    assert_safe_sleep(out)
    assert len(frames(out)) == 2  # over LoRa after the timeout


def test_depot_mqtt_path_works(tmp_path: Path) -> None:
    ups = {str(c): [gp.encode(KEYS, 0x101, c + 1, 0, gp.Ack((c,))).hex()] for c in range(4)}
    out = boot(device(tmp_path, wifi=WIFI), {"ap": {"ssid": "depot", "key": "pw"}, "broker": {"downlinks": ups}})
    st = assert_safe_sleep(out)
    assert out["sent"] == [] and [t for t, _ in out["broker"]["published"]] == ["segel/up/000101"] * 2
    assert queued(out) == 0 and st["wifi_fail"] == 0


def test_flash_full(tmp_path: Path) -> None:
    """The flash has no room (ENOSPC from the file system): nothing can be queued, the seal log
    cannot grow; the tracker still sleeps with the seal wake armed and its RTC state saved."""
    out = boot(device(tmp_path), {"flash_bytes": 40})
    st = assert_safe_sleep(out)
    assert st["fails"] == 1 and "28" in out["log"]


def test_corrupt_rtc_state_recovers(tmp_path: Path) -> None:
    """RTC memory with a valid CRC but nonsense inside (a bug, a bit flip before the CRC): the
    wake fails, sleeps safely; after two failed wakes the cache is dropped and rebuilt from flash."""
    work = device(tmp_path)
    first = boot(work, {})
    body = json.dumps({"seal": 5, "ctr_next": "x", "wakes": 1}).encode()
    bad = dict(first, rtc_hex=(b"SG1" + struct.pack(">I", zlib.crc32(body)) + body).hex())
    a = boot(work, {}, after=bad)
    st = assert_safe_sleep(a, 1)
    assert st["fails"] == 1
    b = boot(work, {}, after=a)
    assert rtc_state(b)["fails"] == 2 and b["deepsleep_ms"] is not None and not b["wdt_reset"]
    c = boot(work, {}, after=b)
    assert c["error"] is None and not c["wdt_reset"] and c["deepsleep_ms"] is not None
    assert rtc_state(c)["fails"] == 0 and len(frames(c)) >= 1  # back to normal wakes
    assert frames(c)[0].header.counter == 64  # resumed after the flash reservation: no counter reused


def test_corrupt_remote_settings_are_ignored(tmp_path: Path) -> None:
    work = device(tmp_path)
    first = boot(work, {})
    bad = dict(first, flash=dict(first["flash"], **{"remote.json": b'{"report_interval_s": "soon", "sf": 99}'.hex()}))
    out = boot(work, {}, after=bad)
    st = assert_safe_sleep(out, 1)
    assert st["fails"] == 0 and 250_000 <= out["deepsleep_ms"] <= 300_000


def test_unexplained_seal_wake_latches_tamper(tmp_path: Path) -> None:
    """MicroPython before 1.29 (no machine.wake_pins): the loop opened in deep sleep and closed
    again before main.py ran. The wake is recorded as an unexplained seal wake, TAMPER latched."""
    work = device(tmp_path)
    armed = boot(work, {})
    flash = dict(armed["flash"], rearm="")  # the technician's re-arm file (data/rearm, over USB)
    armed2 = boot(work, {}, after=dict(armed, flash=flash))
    ev = [f.body.event for f in frames(armed2) if f.type.name == "SEAL"]
    assert ev == [gp.SealEvent.ARMED]
    out = boot(work, {"has_wake_pins": False, "wake_reason": 3, "pins": {str(LOOP): 0, str(LID): 0}},
               after=armed2)
    assert_safe_sleep(out, 2)
    seal = [f for f in frames(out) if f.type.name == "SEAL"]
    assert [(f.body.event, bool(f.body.flags & gp.Flag.TAMPER)) for f in seal] == [(gp.SealEvent.WAKE_UNEXPLAINED, True)]
    assert frames(out)[0].type.name == "SEAL"  # sent before anything else
    timer = boot(work, {"has_wake_pins": False, "wake_reason": 4}, after=out)
    assert not [f for f in frames(timer) if f.type.name == "SEAL"]  # a timer wake is not a seal wake


def test_wifi_only_where_a_depot_is_known(tmp_path: Path) -> None:
    """The first boot (at the depot, on the provisioning bench) learns the depot where WiFi
    answered; a wake whose last fix is kilometres away tries no WiFi at all; back at the depot it
    does again."""
    far = (nmea_sentence("GPGGA,090001.00,0100.00000,N,11730.00000,E,1,08,0.9,35.2,M,48.0,M,,")
           + nmea_sentence("GPGSA,A,3,02,05,12,15,18,21,24,25,29,,,,1.6,0.9,1.3")
           + nmea_sentence("GPRMC,090001.00,A,0100.00000,N,11730.00000,E,0.00,87.5,150127,,,A")).decode()
    work = device(tmp_path, wifi=WIFI)
    ap = {"ap": {"ssid": "depot", "key": "pw"}}
    first = boot(work, ap)
    assert_safe_sleep(first)
    remote = json.loads(bytes.fromhex(first["flash"]["remote.json"]))
    assert remote["depots"] == [[-5000000, 1171000000]]  # where the fix was when WiFi worked
    gone = {"ap": {"ssid": "some other office"}}  # the depot's WiFi is out of range out there
    away = boot(work, {**gone, "uart": [far] * 3}, after=first)  # this wake's fix is ~170 km away ...
    away2 = boot(work, {**gone, "uart": [far] * 3}, after=away)  # (the failed attempt's back-off)
    away3 = boot(work, {**gone, "uart": [far] * 3}, after=away2)  # ... no back-off left: far from any depot
    st = assert_safe_sleep(away3, 3)
    assert st["wifi_wait"] == 0 and not [e for e in away3["wifi"] if e[0] == "connect"] and len(frames(away3)) >= 1
    back = boot(work, {**ap, "uart": [NMEA] * 3}, after=away3)
    home = boot(work, {**ap, "uart": [NMEA] * 3}, after=back)
    assert ["connect", "depot"] in home["wifi"]
