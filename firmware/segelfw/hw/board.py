# Build a hal.Drivers bundle from a board file (hardware/boards/<id>.json) and a validated config.
from segelfw import crypto, hal
from segelfw.hw import clock, gnss, pmu, radio, seal, system


def build(board: dict, cfg: dict, root: str = "") -> hal.Drivers:
    wdt = system.Watchdog(30000)  # first: a hang anywhere below resets the tracker
    p = pmu.make(board["pmu"])
    p.rail("radio", True)  # the LoRa chip must be powered before its driver probes it
    return hal.Drivers(
        clock=clock.Clock(),
        gnss=gnss.Gnss(board["gnss"], p),
        seal=seal.SealInputs(board["seal"]),
        radio=radio.make(board["radio"]),
        rtc=system.RtcMemory(),
        flash=hal.Flash(root + "data"),
        pmu=p,
        wdt=wdt,
        system=system.System(),
        aes_block=crypto.ecb_block,
    )
