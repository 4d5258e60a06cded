"""firmware/main.py boots one full wake cycle on CPython with stand-ins for machine, esp32, lora
and cryptolib that implement only what micropython-esp32-stubs (and our lora stub) declare."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from segel import protocol as gp
from simhw.gnss import nmea_sentence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KEY = bytes(range(32))
NMEA = (nmea_sentence("GPGGA,080001.00,0030.00000,S,11706.00000,E,1,08,0.9,35.2,M,48.0,M,,")
        + nmea_sentence("GPGSA,A,3,02,05,12,15,18,21,24,25,29,,,,1.6,0.9,1.3")
        + nmea_sentence("GPRMC,080001.00,A,0030.00000,S,11706.00000,E,0.00,87.5,150127,,,A")).decode()


def stub_file(name: str) -> Path:
    if name == "lora":
        return HERE / "stubs" / "lora" / "__init__.pyi"
    for f in metadata.files("micropython-esp32-stubs") or []:
        if str(f) == f"{name}.pyi":
            return Path(str(f.locate()))
    raise FileNotFoundError(name)


def declared(pyi: Path) -> dict[str, set[str]]:
    """{"": top-level names, "Class": its members} from a stub file."""
    tree = ast.parse(pyi.read_text())
    out: dict[str, set[str]] = {"": set()}

    def names(body) -> set[str]:
        s = set()
        for n in body:
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                s.add(n.name)
            elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
                s.add(n.target.id)
            elif isinstance(n, ast.Assign):
                s |= {t.id for t in n.targets if isinstance(t, ast.Name)}
        return s

    out[""] = names(tree.body)
    for n in tree.body:
        if isinstance(n, ast.ClassDef):
            members = names(n.body)
            for base in n.bases:  # inherited members declared in the same stub
                if isinstance(base, ast.Name):
                    for m in tree.body:
                        if isinstance(m, ast.ClassDef) and m.name == base.id:
                            members |= names(m.body)
            out[n.name] = members
    return out


@pytest.mark.parametrize("mod", ["machine", "esp32", "lora", "cryptolib"])
def test_standins_implement_only_what_the_stubs_declare(mod: str) -> None:
    stub = declared(stub_file(mod))
    tree = ast.parse((HERE / "standins" / f"{mod}.py").read_text())
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_"):
            assert n.name in stub[""], f"{mod}.{n.name} is not in the stubs"
            if isinstance(n, ast.ClassDef):
                for m in n.body:
                    if isinstance(m, ast.FunctionDef) and not m.name.startswith("_"):
                        assert m.name in stub[n.name], f"{mod}.{n.name}.{m.name} is not in the stubs"
                    if isinstance(m, ast.Assign):
                        for t in m.targets:
                            assert isinstance(t, ast.Name) and t.id in stub[n.name], f"{mod}.{n.name}.{ast.unparse(t)}"
                for m in ast.walk(n):  # public instance attributes too
                    if isinstance(m, ast.Attribute) and isinstance(m.value, ast.Name) and m.value.id == "self" \
                            and isinstance(m.ctx, ast.Store) and not m.attr.startswith("_"):
                        assert m.attr in stub[n.name], f"{mod}.{n.name}.{m.attr} is not in the stubs"
        elif isinstance(n, ast.Assign):
            for t in n.targets:
                if isinstance(t, ast.Name) and not t.id.startswith("_"):
                    assert t.id in stub[""], f"{mod}.{t.id} is not in the stubs"


def boot(work: Path, scenario: dict) -> dict:
    sc = work / "scenario.json"
    sc.write_text(json.dumps(scenario))
    r = subprocess.run([sys.executable, str(HERE / "boot_runner.py"), str(work), str(sc)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def device(tmp: Path, board_id: str, **over) -> Path:
    (tmp / "boards").mkdir(parents=True)
    shutil.copy(ROOT / "hardware" / "boards" / f"{board_id}.json", tmp / "boards")
    cfg = {"device_id": "000101", "key": KEY.hex(), "board": board_id, "jitter_ms": 0, "ack_window_ms": 100}
    cfg.update(over)
    (tmp / "config.json").write_text(json.dumps(cfg))
    return tmp


AXP2101_BATT = {"0x34:0x34": 0x0F, "0x34:0x35": 0x3C}  # 3900 mV
AXP192_BATT = {"0x34:0x78": 0xDD, "0x34:0x79": 0x08}  # 3544 * 1.1 = 3899 mV


@pytest.mark.parametrize(("board", "regs", "gnss_reg", "gnss_bit"), [
    ("tbeam-v1.1", AXP192_BATT, "0x34:0x12", 3),
    ("tbeam-v1.2", AXP2101_BATT, "0x34:0x90", 2),
    ("tbeam-supreme", AXP2101_BATT, "0x34:0x90", 3),
])
def test_main_boots_one_wake_cycle_then_wakes_from_deep_sleep(tmp_path: Path, board: str, regs: dict,
                                                               gnss_reg: str, gnss_bit: int) -> None:
    work = device(tmp_path, board)
    keys = gp.DeviceKeys.from_device_key(KEY)
    ack = gp.encode(keys, 0x101, 1, 0, gp.Ack((0,)))
    out = boot(work, {"uart": [NMEA], "i2c": regs, "replies": [ack.hex()]})
    assert out["deepsleep_ms"] is not None and 250_000 < out["deepsleep_ms"] <= 300_000, out["log"]
    frames = [gp.verify_and_decode(keys, bytes.fromhex(s["packet"])) for s in out["sent"]]
    assert [f.type.name for f in frames] == ["POSITION", "STATUS"]
    pos, st = frames[0].body, frames[1].body
    assert (round(pos.lat, 4), round(pos.lon, 4)) == (-0.5, 117.1)
    assert 3850 <= st.battery_mv <= 3950 and st.reset_cause == 1
    assert all(s["sf"] == 10 and s["bw"] == "125" for s in out["sent"])
    assert not out["i2c"][gnss_reg] >> gnss_bit & 1, "GNSS rail left on"
    assert out["wake"]["ext1"][0] and out["wake"]["ext1"][1] is True  # closed seal inputs wake on open
    assert out["wdt_feeds"] >= 3
    # deep-sleep wake: RTC memory back, counters continue, the acknowledged frame is gone
    out2 = boot(work, {"uart": [NMEA], "i2c": regs, "reset_cause": 4, "rtc_hex": out["rtc_hex"]})
    frames2 = [gp.verify_and_decode(keys, bytes.fromhex(s["packet"])) for s in out2["sent"]]
    # seconds later in real time: no new fix is due, the unacknowledged status goes again, same bytes
    assert [f.header.counter for f in frames2] == [1]
    assert out2["sent"][0]["packet"] == out["sent"][1]["packet"]
    assert "RTC memory lost" not in out2["log"]


@pytest.mark.parametrize(("change", "field"), [
    ({"sf": 12}, "sf"),
    ({"key": "00"}, "key"),
    ({"board": "tbeam-v9"}, "board"),
])
def test_bad_config_never_boots(tmp_path: Path, change: dict, field: str) -> None:
    work = device(tmp_path, "tbeam-v1.1", **change)
    out = boot(work, {"uart": [NMEA]})
    assert f"CONFIG ERROR: config field '{field}'" in out["log"]
    assert out["deepsleep_ms"] is None and out["sent"] == [] and out["configs"] == []
    assert not (work / "data").exists()


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    work = device(tmp_path, "tbeam-v1.1")
    (work / "config.json").unlink()
    out = boot(work, {})
    assert "config.json not found on the device" in out["log"] and out["sent"] == []


def test_device_time_is_unix_time_on_a_2000_epoch_port(tmp_path: Path) -> None:
    """The ESP32 port's time.time() counts from 2000; frames must still carry Unix seconds."""
    import time

    work = device(tmp_path, "tbeam-v1.1")
    out = boot(work, {"uart": [NMEA], "i2c": AXP192_BATT, "epoch": 2000})
    keys = gp.DeviceKeys.from_device_key(KEY)
    frames = [gp.verify_and_decode(keys, bytes.fromhex(s["packet"])) for s in out["sent"]]
    assert frames and all(abs(f.header.time - time.time()) < 120 for f in frames)


def test_a_brief_seal_open_that_woke_the_chip_is_sent_first(tmp_path: Path) -> None:
    """The loop opened in deep sleep (ext1 wake on GPIO13) and closed again before main.py ran."""
    work = device(tmp_path, "tbeam-v1.1")
    (work / "data").mkdir()
    (work / "data" / "rearm").write_text("")  # the technician armed the seal
    keys = gp.DeviceKeys.from_device_key(KEY)
    acks = [gp.encode(keys, 0x101, c + 1, 0, gp.Ack((c,))).hex() for c in range(3)]
    first = boot(work, {"uart": [NMEA], "i2c": AXP192_BATT, "replies": acks})
    assert gp.verify_and_decode(keys, bytes.fromhex(first["sent"][0]["packet"])).body.event == 7  # armed
    out = boot(work, {"uart": [NMEA], "i2c": AXP192_BATT, "reset_cause": 4, "rtc_hex": first["rtc_hex"],
                      "wake_reason": 3, "wake_pins": [13], "pins": {"13": 0, "14": 0}})
    frames = [gp.verify_and_decode(keys, bytes.fromhex(s["packet"])) for s in out["sent"]]
    seal = [(f.body.event, bool(f.body.flags & 8)) for f in frames if f.type.name == "SEAL"]
    assert seal == [(1, True), (2, True)]  # loop open, loop closed; TAMPER latched on both
    assert frames[0].type.name == "SEAL"


def test_axp192_sleep_setting_and_dcdc1_at_3v3(tmp_path: Path) -> None:
    """The register writes on a register-level AXP192 (standins/_axp.py): DCDC1 (the 3V3 header
    feeding the seal pull-ups, found at 1.8 V) set to 3.3 V before anything else; before deep
    sleep LDO2 (radio), LDO3 (GNSS), DCDC2 and EXTEN off, DCDC3 (ESP32) and DCDC1 kept, every
    interrupt masked and cleared, every ADC off."""
    work = device(tmp_path, "tbeam-v1.1")
    pending = {"0x34:0x44": 0x04, "0x34:0x46": 0x02}  # a PMU interrupt left pending (PEK short press)
    out = boot(work, {"uart": [NMEA], "pmu": "axp192", "i2c": {**AXP192_BATT, **pending}, "replies": []})
    assert out["deepsleep_ms"] is not None and out["pmu_errors"] == [], out["pmu_errors"]
    log = [tuple(w) for w in out["pmu_log"]]
    assert log[0] == (0x26, 0x68)  # first write: DCDC1 = 0.7 V + 104 x 25 mV = 3.3 V
    r = {int(k.split(":")[1], 16): v for k, v in out["i2c"].items()}
    assert 700 + (r[0x26] & 0x7F) * 25 == 3300
    assert r[0x12] == 0b0000_0011, f"{r[0x12]:#010b}: only DCDC1 and DCDC3 stay on in deep sleep"
    assert all(r[reg] == 0 for reg in (0x40, 0x41, 0x42, 0x43, 0x4A)), "PMU interrupts left enabled"
    assert all(r[reg] == 0 for reg in (0x44, 0x45, 0x46, 0x47, 0x4D)), "pending PMU interrupt not cleared"
    assert r[0x82] == 0 and r[0x83] == 0, "PMU ADCs left on"
    assert 3850 <= gp.verify_and_decode(gp.DeviceKeys.from_device_key(KEY), bytes.fromhex(out["sent"][1]["packet"])).body.battery_mv <= 3950


@pytest.mark.parametrize(("board", "keep_on"), [("tbeam-v1.2", 0x01), ("tbeam-supreme", 0x01)])
def test_axp2101_sleep_setting(tmp_path: Path, board: str, keep_on: int) -> None:
    """AXP2101 (datasheet V1.4 s6.13): before deep sleep every DC-DC but DC1 (ESP32) and every LDO
    off, VBACKUP charging kept (GNSS hot starts), interrupts masked and cleared, ADC channels off,
    the TS pin a fixed input with its current source off."""
    work = device(tmp_path, board)
    out = boot(work, {"uart": [NMEA], "pmu": "axp2101", "i2c": {**AXP2101_BATT, "0x34:0x49": 0x08}, "replies": [],
                      "uart_gate_pin": 7 if board == "tbeam-supreme" else None})
    assert out["deepsleep_ms"] is not None and out["pmu_errors"] == [], out["pmu_errors"]
    r = {int(k.split(":")[1], 16): v for k, v in out["i2c"].items()}
    assert r[0x80] & 0x1F == keep_on and r[0x90] == 0 and r[0x91] == 0
    assert r[0x18] & 0x04, "VBACKUP charging switched off: no GNSS hot start"
    assert (r[0x40], r[0x41], r[0x42]) == (0, 0, 0) and (r[0x48], r[0x49], r[0x4A]) == (0, 0, 0)
    assert r[0x30] & 0x3F == 0
    assert r[0x50] & 0x10 and not r[0x50] & 0x0C
    # and while awake the GNSS rail was on: the position has a fix
    keys = gp.DeviceKeys.from_device_key(KEY)
    pos = gp.verify_and_decode(keys, bytes.fromhex(out["sent"][0]["packet"]))
    assert pos.type.name == "POSITION" and pos.body.flags & 1


def test_supreme_l76k_wake_pin_is_raised_by_the_driver(tmp_path: Path) -> None:
    """The real GNSS driver on the boot: the UART stand-in says nothing while GPIO7 is low."""
    work = device(tmp_path, "tbeam-supreme")
    out = boot(work, {"uart": [NMEA], "pmu": "axp2101", "i2c": AXP2101_BATT, "uart_gate_pin": 7, "replies": []})
    keys = gp.DeviceKeys.from_device_key(KEY)
    pos = gp.verify_and_decode(keys, bytes.fromhex(out["sent"][0]["packet"]))
    assert pos.body.flags & 1 and out["uart_left"] == 0
    assert out["pins"]["7"] == 0  # low again (standby) before deep sleep


@pytest.mark.parametrize(("board", "chip"), [("tbeam-v1.1", "sx1276"), ("tbeam-v1.2-sx1262", "sx1262")])
def test_radio_calibrated_once_at_the_operating_frequency(tmp_path: Path, board: str, chip: str) -> None:
    work = device(tmp_path, board)
    out = boot(work, {"uart": [NMEA], "i2c": AXP192_BATT if board == "tbeam-v1.1" else AXP2101_BATT, "replies": []})
    assert out["calibrations"] == [{"chip": chip, "freq_khz": 922200}]  # the middle of AS923-2's channels
    work2 = device(tmp_path / "fixed", board, channel=921400)
    out2 = boot(work2, {"uart": [NMEA], "i2c": AXP192_BATT, "replies": []})
    assert out2["calibrations"] == [{"chip": chip, "freq_khz": 921400}]
