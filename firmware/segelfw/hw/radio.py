# hal.Radio: micropython-lib's lora driver for the board's chip (SX1276 or SX1262) on SPI.
# The driver object already has the synchronous API (send, recv, configure, standby, sleep).
from machine import SPI, Pin

from segelfw import airtime


def operating_khz(cfg: dict) -> int:
    """The frequency the radio is calibrated at: the fixed channel, or the middle of the region's
    channels (AS923-2 spans 1.4 MHz, well inside one image calibration's band)."""
    ch = cfg["channel"]
    if ch != "random":
        return ch
    chans = airtime.region(cfg["region"])["channels_khz"]
    return chans[len(chans) // 2]


def make(radio_cfg: dict, lora_cfg: dict | None = None, calibrate_khz: int | None = None):
    s = radio_cfg["spi"]
    spi = SPI(s["id"], baudrate=s.get("baudrate", 8000000), sck=Pin(s["sck"]), mosi=Pin(s["mosi"]), miso=Pin(s["miso"]))
    cs = Pin(radio_cfg["cs"], Pin.OUT, value=1)
    reset = Pin(radio_cfg["reset"], Pin.OUT, value=1) if radio_cfg.get("reset") is not None else None
    chip = radio_cfg["chip"]
    if chip == "sx1276":
        from lora import SX1276

        dio0 = Pin(radio_cfg["dio0"], Pin.IN) if radio_cfg.get("dio0") is not None else None
        dio1 = Pin(radio_cfg["dio1"], Pin.IN) if radio_cfg.get("dio1") is not None else None
        modem = SX1276(spi, cs, dio0=dio0, dio1=dio1, reset=reset, lora_cfg=lora_cfg)
    elif chip == "sx1262":
        from lora import SX1262

        modem = SX1262(
            spi,
            cs,
            busy=Pin(radio_cfg["busy"], Pin.IN),
            dio1=Pin(radio_cfg["dio1"], Pin.IN),
            dio3_tcxo_millivolts=radio_cfg.get("tcxo_mv"),
            reset=reset,
            lora_cfg=lora_cfg,
        )
    else:
        raise ValueError("unsupported radio chip " + str(chip))
    if calibrate_khz is not None:
        # The image & RSSI calibration depends on the frequency (SX1276 datasheet s2.1.3.8: the
        # chip runs it at power-on for the 434 MHz band only; SX1262 datasheet s9.2.1,
        # CalibrateImage): run it once at the operating frequency after every reset (each wake
        # resets the radio). micropython-lib's calibrate_image() calibrates at the frequency set
        # last; its SX127x calibrate() is only this ("no other runtime calibration is implemented
        # in the modem"), the SX126x's RC/PLL/ADC calibration runs by itself at power-on.
        if lora_cfg is None or lora_cfg.get("freq_khz") != calibrate_khz:
            modem.configure({"freq_khz": calibrate_khz})
        modem.calibrate_image()
    return modem
