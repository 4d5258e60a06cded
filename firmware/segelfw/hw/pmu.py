# PMU drivers over I2C: AXP192 (T-Beam v1.0/v1.1) and AXP2101 (v1.2, Supreme).
# Registers from LilyGO's XPowersLib (XPowersAXP192.tpp / XPowersAXP2101.tpp and their
# *Constants.h); see docs/hardware.md. The rail that powers the ESP32 is never switched.
from machine import I2C, Pin

# AXP192
_A192_STATUS = 0x00  # bit 7 ACIN present, bit 5 VBUS present
_A192_OUTPUT = 0x12  # bit 0 DCDC1, 1 DCDC3, 2 LDO2, 3 LDO3, 4 DCDC2, 6 EXTEN
_A192_LDO23_V = 0x28  # LDO2 high nibble, LDO3 low nibble: 1.8 V + n x 0.1 V
_A192_ADC_EN1 = 0x82  # bit 7 battery voltage ADC
_A192_VBAT_H = 0x78  # 12 bits (0x78 high 8, 0x79 low 4), 1.1 mV per step
_A192_BITS = {"dcdc1": 0, "dcdc3": 1, "ldo2": 2, "ldo3": 3, "dcdc2": 4, "exten": 6}

# AXP2101
_A2101_STATUS1 = 0x00  # bit 5 VBUS good
_A2101_BACKUP = 0x18  # bit 2 button-battery (VBACKUP) charge enable: keeps GNSS backup power
_A2101_ADC_EN = 0x30  # bit 0 battery voltage measurement
_A2101_VBAT_H = 0x34  # 14 bits (0x34 low 6 bits high, 0x35 low), mV
_A2101_LDO_EN = 0x90  # bit 0 ALDO1, 1 ALDO2, 2 ALDO3, 3 ALDO4, 4 BLDO1, 5 BLDO2
_A2101_ALDO1_V = 0x92  # ALDO1..4 at 0x92..0x95: 0.5 V + n x 0.1 V
_A2101_BITS = {"aldo1": 0, "aldo2": 1, "aldo3": 2, "aldo4": 3, "bldo1": 4, "bldo2": 5}


class _Axp:
    BITS: dict = {}
    OUTPUT = 0

    def __init__(self, pmu_cfg: dict) -> None:
        c = pmu_cfg["i2c"]
        self.i2c = I2C(c["id"], scl=Pin(c["scl"]), sda=Pin(c["sda"]), freq=c.get("freq", 400000))
        self.addr = pmu_cfg.get("addr", 0x34)
        self.rails = pmu_cfg["rails"]  # role -> rail name, e.g. {"gnss": "ldo3"}
        self.mcu_rail = self.rails.get("mcu")

    def _r(self, reg: int) -> int:
        return self.i2c.readfrom_mem(self.addr, reg, 1)[0]

    def _w(self, reg: int, v: int) -> None:
        self.i2c.writeto_mem(self.addr, reg, bytes((v & 0xFF,)))

    def _bit(self, reg: int, bit: int, on: bool) -> None:
        v = self._r(reg)
        self._w(reg, (v | (1 << bit)) if on else (v & ~(1 << bit)))

    def rail(self, name: str, on: bool) -> None:
        rail = self.rails.get(name, name)
        if rail == self.mcu_rail:
            raise ValueError("refusing to switch the ESP32's own rail " + str(rail))
        if rail not in self.BITS:
            raise ValueError("unknown PMU rail " + str(name))
        self._bit(self.OUTPUT, self.BITS[rail], on)

    def gnss_power(self, on: bool) -> None:
        self.rail("gnss", on)


class AXP192(_Axp):
    BITS = _A192_BITS
    OUTPUT = _A192_OUTPUT

    def __init__(self, pmu_cfg: dict) -> None:
        _Axp.__init__(self, pmu_cfg)
        self._w(_A192_LDO23_V, 0xFF)  # LDO2 (radio) and LDO3 (GNSS) at 3.3 V
        self._bit(_A192_ADC_EN1, 7, True)

    def battery_mv(self) -> int:
        b = self.i2c.readfrom_mem(self.addr, _A192_VBAT_H, 2)
        return ((b[0] << 4) | (b[1] & 0x0F)) * 11 // 10

    def external_power(self) -> bool:
        return bool(self._r(_A192_STATUS) & 0xA0)


class AXP2101(_Axp):
    BITS = _A2101_BITS
    OUTPUT = _A2101_LDO_EN

    def __init__(self, pmu_cfg: dict) -> None:
        _Axp.__init__(self, pmu_cfg)
        for role in ("radio", "gnss"):
            rail = self.rails.get(role, "")
            if rail.startswith("aldo"):
                self._w(_A2101_ALDO1_V + int(rail[4]) - 1, 28)  # 0.5 V + 28 x 0.1 V = 3.3 V
        self._bit(_A2101_ADC_EN, 0, True)
        if pmu_cfg.get("gnss_backup") == "vbackup":
            self._bit(_A2101_BACKUP, 2, True)

    def battery_mv(self) -> int:
        b = self.i2c.readfrom_mem(self.addr, _A2101_VBAT_H, 2)
        return ((b[0] & 0x3F) << 8) | b[1]

    def external_power(self) -> bool:
        return bool(self._r(_A2101_STATUS1) & 0x20)


def make(pmu_cfg: dict) -> _Axp:
    t = pmu_cfg["type"]
    if t == "axp192":
        return AXP192(pmu_cfg)
    if t == "axp2101":
        return AXP2101(pmu_cfg)
    raise ValueError("unsupported PMU " + str(t))
