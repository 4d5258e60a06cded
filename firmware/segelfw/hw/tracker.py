# The tracker role on the board: build the drivers, run one wake cycle, and whatever goes wrong
# end in the same safe deep sleep (segelfw.cycle.fail_safe): seal wake armed, PMU in its sleep
# setting, RTC state saved, the watchdog never left to bite. firmware/main.py calls run().
import sys

from segelfw import cycle, hal


def _print_exc(e: BaseException) -> None:
    pe = getattr(sys, "print_exception", None)  # MicroPython
    if pe is not None:
        pe(e)
    else:
        print(repr(e))


def _minimal(board: dict, cfg: dict, root: str, why: str) -> hal.Drivers:
    """When even the driver bundle could not be built: whatever still works, for fail_safe()."""
    from segelfw.hw import system

    faults = [why]
    parts: dict = {}
    for name in ("wdt", "rtc", "system", "seal", "pmu"):
        try:
            if name == "wdt":
                parts[name] = system.Watchdog(30000)
            elif name == "rtc":
                parts[name] = system.RtcMemory()
            elif name == "system":
                parts[name] = system.System()
            elif name == "seal":
                from segelfw.hw import seal

                parts[name] = seal.SealInputs(board["seal"])
            else:
                from segelfw.hw import pmu

                parts[name] = pmu.make(board["pmu"])
        except Exception as e:  # noqa: BLE001
            faults.append(name + ": " + repr(e))
    return hal.Drivers(None, hal.NoGnss(), parts.get("seal") or hal.NoSeal(), hal.NoRadio(),
                       parts.get("rtc") or _NoRtc(), hal.Flash(root + "data"), parts.get("pmu") or hal.NoPmu(),
                       parts.get("wdt") or hal.Watchdog(), parts.get("system") or _BareSystem(), faults=faults)


class _NoRtc(hal.RtcMemory):
    def read(self) -> bytes:
        return b""

    def write(self, data: bytes) -> None:
        raise OSError("no RTC memory")


class _BareSystem(hal.System):
    def reset_cause(self) -> int:
        return 0

    def deepsleep(self, ms: int) -> None:
        import machine

        machine.deepsleep(ms)


def _wifi(cfg: dict, d: hal.Drivers):
    if cfg["wifi"] is None:
        return None

    def connect():
        from segelfw.hw import wifi

        return wifi.connect(cfg, d.clock, d.wdt.feed)

    return connect


CPU_HZ = 80_000_000  # the wake is mostly waiting (GNSS, receive windows): ESP32 datasheet
# "Modem-sleep" 20-31 mA at 80 MHz against 27-44 mA at MicroPython's default 160 MHz


def _slow_cpu() -> None:
    try:
        import machine

        machine.freq(CPU_HZ)
    except Exception as e:  # noqa: BLE001 - a port without freq(): run at its default
        print("segel: CPU clock left at default (" + repr(e) + ")")


def run(cfg: dict, board: dict, root: str = ""):
    """One wake of the tracker; on the device the deep sleep at the end never returns."""
    _slow_cpu()
    d = None
    c = None
    why = ""
    try:
        from segelfw.hw import board as hwboard

        d = hwboard.build(board, cfg, root)
        c = cycle.Cycle(d, cfg, None, board, _wifi(cfg, d))
        return c.run()
    except Exception as e:  # noqa: BLE001 - never stay awake on an error: log it, sleep safely
        print("segel: wake cycle failed:")
        _print_exc(e)
        why = repr(e)
    if d is None:
        d = _minimal(board, cfg, root, why)
    try:
        from segelfw.hw import wifi

        wifi.off()
    except Exception:  # noqa: BLE001 - no network module on this board
        pass
    return cycle.fail_safe(d, cfg, c, why)
