# PMU drivers over I2C: AXP192 (T-Beam v1.0/v1.1) and AXP2101 (v1.2, Supreme): rails, battery, sleep.
# Register addresses and bits from the X-Powers datasheets (AXP2101 Datasheet V1.4 s6.13; AXP192
# datasheet, Chinese edition) as LilyGO's XPowersLib implements them (src/REG/AXP192Constants.h,
# AXP2101Constants.h, XPowersAXP192.hpp, XPowersAXP2101.hpp); hardware/sources.md lists them.
# The rail that powers the ESP32 is never switched, and neither is a rail the board file keeps on
# in sleep (the 3V3 header rail feeding the seal pull-ups).
from machine import I2C, Pin

# --- AXP192 -----------------------------------------------------------------------------------
_A192_STATUS = 0x00  # bit 7 ACIN present, bit 5 VBUS present
_A192_OUTPUT = 0x12  # bit 0 DCDC1, 1 DCDC3, 2 LDO2, 3 LDO3, 4 DCDC2, 6 EXTEN
_A192_DC1_V = 0x26  # DCDC1 voltage, bits 6:0: 0.7 V + n x 25 mV (0.7..3.5 V); bit 7 kept
_A192_LDO23_V = 0x28  # LDO2 high nibble, LDO3 low nibble: 1.8 V + n x 0.1 V
_A192_IRQ_EN = (0x40, 0x41, 0x42, 0x43, 0x4A)  # IRQ enable 1..5
_A192_IRQ_STS = (0x44, 0x45, 0x46, 0x47, 0x4D)  # IRQ status 1..5, write 1 to clear
_A192_ADC_EN1 = 0x82  # 7 batt V, 6 batt I, 5 ACIN V, 4 ACIN I, 3 VBUS V, 2 VBUS I, 1 APS V, 0 TS
_A192_ADC_EN2 = 0x83  # 7 internal temperature, 3..0 GPIO0..3 ADC
_A192_VBAT_H = 0x78  # 12 bits (0x78 high 8, 0x79 low 4), 1.1 mV per step
_A192_BITS = {"dcdc1": 0, "dcdc3": 1, "ldo2": 2, "ldo3": 3, "dcdc2": 4, "exten": 6}
_A192_DC1_MV = 3300  # the 3V3 header (and the OLED) on the T-Beam v1.x: 1.8 V seen on a v1.0

# --- AXP2101 ----------------------------------------------------------------------------------
_A2101_STATUS1 = 0x00  # bit 5 VBUS good
_A2101_BACKUP = 0x18  # bit 2 button-battery (VBACKUP) charge enable: keeps GNSS backup power
_A2101_ADC_EN = 0x30  # 0 batt V, 1 TS, 2 VBUS V, 3 VSYS V, 4 die temp, 5 general purpose ADC
_A2101_VBAT_H = 0x34  # 14 bits (0x34 low 6 bits high, 0x35 low), mV
_A2101_IRQ_EN = (0x40, 0x41, 0x42)  # IRQ enable 0..2 (reset values 0xFF, 0xFC, 0x5F)
_A2101_IRQ_STS = (0x48, 0x49, 0x4A)  # IRQ status 0..2, RW1C
_A2101_TS = 0x50  # bit 4: TS pin an external fixed input (no NTC on these boards); 3:2 current source 00 off
_A2101_DC_EN = 0x80  # bits 0..4 DCDC1..5
_A2101_LDO_EN = 0x90  # bit 0 ALDO1, 1 ALDO2, 2 ALDO3, 3 ALDO4, 4 BLDO1, 5 BLDO2, 6 CPUSLDO, 7 DLDO1
_A2101_LDO_EN1 = 0x91  # bit 0 DLDO2
_A2101_ALDO1_V = 0x92  # ALDO1..4 at 0x92..0x95: 0.5 V + n x 0.1 V
_A2101_RAILS = {
    "dc1": (_A2101_DC_EN, 0), "dc2": (_A2101_DC_EN, 1), "dc3": (_A2101_DC_EN, 2), "dc4": (_A2101_DC_EN, 3),
    "dc5": (_A2101_DC_EN, 4), "aldo1": (_A2101_LDO_EN, 0), "aldo2": (_A2101_LDO_EN, 1), "aldo3": (_A2101_LDO_EN, 2),
    "aldo4": (_A2101_LDO_EN, 3), "bldo1": (_A2101_LDO_EN, 4), "bldo2": (_A2101_LDO_EN, 5),
    "cpusldo": (_A2101_LDO_EN, 6), "dldo1": (_A2101_LDO_EN, 7), "dldo2": (_A2101_LDO_EN1, 0),
}
# older board files name the AXP2101's DC-DCs "dcdc1"..: the same rails
_A2101_ALIASES = {"dcdc1": "dc1", "dcdc2": "dc2", "dcdc3": "dc3", "dcdc4": "dc4", "dcdc5": "dc5"}


class _Axp:
    RAILS: dict = {}  # rail -> (register, bit)

    def __init__(self, pmu_cfg: dict) -> None:
        c = pmu_cfg["i2c"]
        self.i2c = I2C(c["id"], scl=Pin(c["scl"]), sda=Pin(c["sda"]), freq=c.get("freq", 400000))
        self.addr = pmu_cfg.get("addr", 0x34)
        self.rails = pmu_cfg["rails"]  # role -> rail name, e.g. {"gnss": "ldo3"}
        self.mcu_rail = self._name(self.rails.get("mcu", ""))
        # rails that stay on through deep sleep besides the MCU's (by role or rail name)
        self.keep = [self._name(self.rails.get(r, r)) for r in pmu_cfg.get("sleep_on", [])]

    def _name(self, rail: str) -> str:
        return rail

    def _r(self, reg: int) -> int:
        return self.i2c.readfrom_mem(self.addr, reg, 1)[0]

    def _w(self, reg: int, v: int) -> None:
        self.i2c.writeto_mem(self.addr, reg, bytes((v & 0xFF,)))

    def _bit(self, reg: int, bit: int, on: bool) -> None:
        v = self._r(reg)
        self._w(reg, (v | (1 << bit)) if on else (v & ~(1 << bit)))

    def rail(self, name: str, on: bool) -> None:
        rail = self._name(self.rails.get(name, name))
        if rail == self.mcu_rail:
            raise ValueError("refusing to switch the ESP32's own rail " + str(rail))
        if rail not in self.RAILS:
            raise ValueError("unknown PMU rail " + str(name))
        reg, bit = self.RAILS[rail]
        self._bit(reg, bit, on)

    def gnss_power(self, on: bool) -> None:
        self.rail("gnss", on)

    def _rails_off_for_sleep(self) -> None:
        # one read-modify-write per enable register: every rail off but the MCU's and the kept ones
        regs: dict = {}
        for rail in self.RAILS:
            reg, bit = self.RAILS[rail]
            if rail != self.mcu_rail and rail not in self.keep:
                regs[reg] = regs.get(reg, 0) | (1 << bit)
        for reg in sorted(regs):
            v = self._r(reg)
            self._w(reg, v & ~regs[reg])


class AXP192(_Axp):
    RAILS = {k: (_A192_OUTPUT, b) for k, b in _A192_BITS.items()}

    def __init__(self, pmu_cfg: dict) -> None:
        _Axp.__init__(self, pmu_cfg)
        # DCDC1 to 3.3 V first: the 3V3 header feeds the seal pull-ups (0x68 = (3300 - 700) / 25)
        self._w(_A192_DC1_V, (self._r(_A192_DC1_V) & 0x80) | ((_A192_DC1_MV - 700) // 25))
        self._w(_A192_LDO23_V, 0xFF)  # LDO2 (radio) and LDO3 (GNSS) at 3.3 V: 1.8 V + 15 x 0.1 V
        self._bit(_A192_ADC_EN1, 7, True)  # battery voltage ADC, for battery_mv()

    def battery_mv(self) -> int:
        b = self.i2c.readfrom_mem(self.addr, _A192_VBAT_H, 2)
        return ((b[0] << 4) | (b[1] & 0x0F)) * 11 // 10

    def external_power(self) -> bool:
        return bool(self._r(_A192_STATUS) & 0xA0)

    def sleep(self) -> None:
        """Before deep sleep: LDO2 (radio), LDO3 (GNSS), DCDC2 and EXTEN off (DCDC3 = ESP32 and
        the kept DCDC1 stay); every PMU interrupt masked and its status cleared, so the IRQ line
        stays quiet; every ADC off, the TS pin's included (these boards have no thermistor)."""
        self._rails_off_for_sleep()
        for reg in _A192_IRQ_EN:
            self._w(reg, 0x00)
        for reg in _A192_IRQ_STS:
            self._w(reg, 0xFF)
        self._w(_A192_ADC_EN1, 0x00)
        self._w(_A192_ADC_EN2, 0x00)


class AXP2101(_Axp):
    RAILS = _A2101_RAILS

    def _name(self, rail: str) -> str:
        return _A2101_ALIASES.get(rail, rail)

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

    def sleep(self) -> None:
        """Before deep sleep: every DC-DC and LDO off but DC1 (the ESP32) and the kept ones;
        VBACKUP stays (REG 18 bit 2 untouched: GNSS hot starts); interrupts masked and cleared;
        ADC channels off and the TS pin a fixed input with its current source off (no NTC)."""
        self._rails_off_for_sleep()
        for reg in _A2101_IRQ_EN:
            self._w(reg, 0x00)
        for reg in _A2101_IRQ_STS:
            self._w(reg, 0xFF)
        self._w(_A2101_ADC_EN, self._r(_A2101_ADC_EN) & 0xC0)  # bits 7:6 are not channels
        self._w(_A2101_TS, (self._r(_A2101_TS) & 0xE0) | 0x10)


def make(pmu_cfg: dict) -> _Axp:
    t = pmu_cfg["type"]
    if t == "axp192":
        return AXP192(pmu_cfg)
    if t == "axp2101":
        return AXP2101(pmu_cfg)
    raise ValueError("unsupported PMU " + str(t))
