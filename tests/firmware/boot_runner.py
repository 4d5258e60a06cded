"""Boot firmware/main.py on CPython with stand-in machine/esp32/lora/cryptolib modules.

    python boot_runner.py WORKDIR SCENARIO.json  -> prints one JSON line with what happened

Run as a subprocess by test_hw_boot.py so the stand-ins never leak into other tests. WORKDIR is
the device's file system root (config.json, boards/, data/). The scenario presets the stand-ins:
reset cause, RTC memory (hex), UART chunks (NMEA), I2C registers, LoRa replies (hex).
"""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE / "standins"), str(ROOT / "firmware"), str(HERE / "mp")]

import time as _real_time  # noqa: E402

import vtime  # noqa: E402

# the firmware's clock runs virtual (a radio's time on air, timeouts, jitter take no real time);
# time.time() counts from 2000 like the ESP32 port's when the scenario says epoch 2000
_scenario = json.loads(Path(sys.argv[2]).read_text()) if len(sys.argv) > 2 else {}
_vt = vtime.install(int(_real_time.time()), vtime.ESP32_EPOCH if _scenario.get("epoch") == 2000 else 0)

import _axp  # noqa: E402
import esp32  # noqa: E402
import lora  # noqa: E402
import machine  # noqa: E402


def main() -> None:
    work, scenario = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    os.chdir(work)
    machine._reset_cause = scenario.get("reset_cause", machine.PWRON_RESET)
    machine._rtc_memory = bytes.fromhex(scenario.get("rtc_hex", ""))
    machine._wake_reason = scenario.get("wake_reason", 0)
    machine._wake_pins = tuple(scenario.get("wake_pins", ()))
    for pin, level in scenario.get("pins", {}).items():
        machine._pin_levels[int(pin)] = level
    machine._uart_feed[:] = [c.encode("latin-1") for c in scenario.get("uart", [])]
    pmu = None
    if scenario.get("pmu"):  # a register-level PMU model at 0x34, preset from "i2c"
        pmu = {"axp192": _axp.AXP192, "axp2101": _axp.AXP2101}[scenario["pmu"]](
            {int(k.split(":")[1], 0): v for k, v in scenario.get("i2c", {}).items()})
        machine._i2c_devices[0x34] = pmu
    else:
        for k, v in scenario.get("i2c", {}).items():
            a, r = k.split(":")
            machine._i2c_regs[(int(a, 0), int(r, 0))] = v
    machine._uart_gate_pin = scenario.get("uart_gate_pin")
    lora._replies[:] = [bytes.fromhex(h) for h in scenario.get("replies", [])]
    _vt.hooks.append(machine._wdt_check)
    sys.path.insert(0, str(ROOT / "firmware"))
    import runpy

    out = io.StringIO()
    slept = None
    wdt_reset = False
    with redirect_stdout(out):
        try:
            runpy.run_path(str(ROOT / "firmware" / "main.py"), run_name="__main__")
        except machine._DeepSleep as e:
            slept = e.ms
        except machine._WatchdogReset:
            wdt_reset = True
    regs = machine._i2c_regs if pmu is None else {(0x34, r): v for r, v in pmu.regs.items()}
    print(json.dumps({
        "deepsleep_ms": slept,
        "log": out.getvalue(),
        "sent": [dict(s, packet=s["packet"].hex()) for s in lora._sent],
        "configs": lora._configs,
        "calibrations": lora._calibrations,
        "rtc_hex": machine._rtc_memory.hex(),
        "i2c": {f"{a:#x}:{r:#x}": v for (a, r), v in regs.items()},
        "pmu_log": [] if pmu is None else pmu.log,
        "pmu_errors": [] if pmu is None else pmu.errors,
        "wdt_reset": wdt_reset,
        "pins": {str(k): v for k, v in machine._pin_levels.items()},
        "wake": {k: list(v) if isinstance(v, tuple) else v for k, v in esp32._wake.items()},
        "wdt_feeds": machine._wdt_feeds,
        "uart_left": len(machine._uart_feed),
    }))


if __name__ == "__main__":
    main()
