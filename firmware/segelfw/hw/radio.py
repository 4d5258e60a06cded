# hal.Radio: micropython-lib's lora driver for the board's chip (SX1276 or SX1262) on SPI.
# The driver object already has the synchronous API (send, recv, configure, standby, sleep).
from machine import SPI, Pin


def make(radio_cfg: dict, lora_cfg: dict | None = None):
    s = radio_cfg["spi"]
    spi = SPI(s["id"], baudrate=s.get("baudrate", 8000000), sck=Pin(s["sck"]), mosi=Pin(s["mosi"]), miso=Pin(s["miso"]))
    cs = Pin(radio_cfg["cs"], Pin.OUT, value=1)
    reset = Pin(radio_cfg["reset"], Pin.OUT, value=1) if radio_cfg.get("reset") is not None else None
    chip = radio_cfg["chip"]
    if chip == "sx1276":
        from lora import SX1276

        dio0 = Pin(radio_cfg["dio0"], Pin.IN) if radio_cfg.get("dio0") is not None else None
        dio1 = Pin(radio_cfg["dio1"], Pin.IN) if radio_cfg.get("dio1") is not None else None
        return SX1276(spi, cs, dio0=dio0, dio1=dio1, reset=reset, lora_cfg=lora_cfg)
    if chip == "sx1262":
        from lora import SX1262

        return SX1262(
            spi,
            cs,
            busy=Pin(radio_cfg["busy"], Pin.IN),
            dio1=Pin(radio_cfg["dio1"], Pin.IN),
            dio3_tcxo_millivolts=radio_cfg.get("tcxo_mv"),
            reset=reset,
            lora_cfg=lora_cfg,
        )
    raise ValueError("unsupported radio chip " + str(chip))
