# Build a hal.Drivers bundle from a board file (hardware/boards/<id>.json) and a validated config.
# Each part is built on its own: a part whose driver fails (the radio does not answer on SPI, the
# PMU not on I2C, ...) is replaced by a hal.No* stand-in and named in drivers.faults, so the tracker
# still logs seal events, queues frames and sleeps safely instead of crashing at every wake.
from segelfw import crypto, hal
from segelfw.hw import clock, gnss, pmu, radio, seal, system


def _part(faults: list, name: str, make, fallback):
    try:
        return make()
    except Exception as e:  # noqa: BLE001 - any driver error: name it, carry on without the part
        faults.append(name + ": " + repr(e))
        return fallback(repr(e))


def build(board: dict, cfg: dict, root: str = "") -> hal.Drivers:
    wdt = system.Watchdog(30000)  # first: a hang anywhere below resets the tracker
    faults: list = []
    p = _part(faults, "pmu", lambda: pmu.make(board["pmu"]), hal.NoPmu)

    def _radio():
        p.rail("radio", True)  # the LoRa chip must be powered before its driver probes it
        return radio.make(board["radio"], calibrate_khz=radio.operating_khz(cfg))

    return hal.Drivers(
        clock=clock.Clock(),
        gnss=_part(faults, "gnss", lambda: gnss.Gnss(board["gnss"], p), hal.NoGnss),
        seal=_part(faults, "seal", lambda: seal.SealInputs(board["seal"]), hal.NoSeal),
        radio=_part(faults, "radio", _radio, hal.NoRadio),
        rtc=system.RtcMemory(),
        flash=hal.Flash(root + "data"),
        pmu=p,
        wdt=wdt,
        system=system.System(),
        aes_block=crypto.ecb_block,
        faults=faults,
    )
