"""Register-level stand-ins for the X-Powers AXP192 and AXP2101 PMUs on the I2C bus (CPython and
MicroPython), written from the register maps: AXP2101 Datasheet V1.4 s6.13 (addresses, bit
meanings, read-only and write-1-to-clear registers, reset values) and, for the AXP192, the register
addresses and bits LilyGO's XPowersLib uses (src/REG/AXP192Constants.h, XPowersAXP192.hpp; its
datasheet is in Chinese only).

A register is (reset value, writable-bit mask, kind): "rw", "ro" (writes are an error), "w1c"
(writing 1 clears a status bit). Reading or writing a register that is not in the map is recorded
as an error: the driver asked for something the chip does not have. Reset values the datasheet
leaves to eFuses (the rail enables) are set to the board's power-on state, every rail on, which is
what the firmware must switch off. Battery-voltage registers read 0 while the ADC channel is off.
"""

from __future__ import annotations


class _Axp:
    MAP: dict = {}
    BATT_REGS: tuple = ()
    BATT_ADC: tuple = (0, 0)  # (register, bit) enabling the battery-voltage ADC

    def __init__(self, preset: dict | None = None) -> None:
        self.regs = {r: v[0] for r, v in self.MAP.items()}
        self.log: list = []  # (register, value written)
        self.errors: list = []
        for r, v in (preset or {}).items():
            self.regs[int(r)] = v  # ADC results, pending interrupts, a rail found off

    def read(self, reg: int) -> int:
        if reg not in self.MAP:
            self.errors.append(f"read of unknown register {reg:#04x}")
            return 0
        if reg in self.BATT_REGS and not self.regs[self.BATT_ADC[0]] >> self.BATT_ADC[1] & 1:
            return 0
        return self.regs[reg]

    def write(self, reg: int, value: int) -> None:
        self.log.append((reg, value))
        spec = self.MAP.get(reg)
        if spec is None:
            self.errors.append(f"write of unknown register {reg:#04x}")
            return
        _, mask, kind = spec
        if kind == "ro":
            self.errors.append(f"write to read-only register {reg:#04x}")
        elif kind == "w1c":
            self.regs[reg] &= ~value & 0xFF
        else:
            self.regs[reg] = (self.regs[reg] & ~mask) | (value & mask)

    def writes_to(self, reg: int) -> list:
        return [v for r, v in self.log if r == reg]


class AXP192(_Axp):
    MAP = {
        0x00: (0x00, 0x00, "ro"),  # power status: 7 ACIN present, 5 VBUS present
        0x12: (0x5F, 0x5F, "rw"),  # output enable: 0 DCDC1, 1 DCDC3, 2 LDO2, 3 LDO3, 4 DCDC2, 6 EXTEN
        0x26: (0x2C, 0x7F, "rw"),  # DCDC1 voltage 0.7 V + n x 25 mV; 0x2C = 1.8 V (seen on a v1.0)
        0x28: (0xCC, 0xFF, "rw"),  # LDO2 (high nibble) / LDO3 voltage, 1.8 V + n x 0.1 V
        0x40: (0xFF, 0xFF, "rw"),  # IRQ enable 1..5 (0x40-0x43, 0x4A)
        0x41: (0xFF, 0xFF, "rw"),
        0x42: (0xFF, 0xFF, "rw"),
        0x43: (0xFF, 0xFF, "rw"),
        0x4A: (0xFF, 0xFF, "rw"),
        0x44: (0x00, 0xFF, "w1c"),  # IRQ status 1..5 (0x44-0x47, 0x4D)
        0x45: (0x00, 0xFF, "w1c"),
        0x46: (0x00, 0xFF, "w1c"),
        0x47: (0x00, 0xFF, "w1c"),
        0x4D: (0x00, 0xFF, "w1c"),
        0x78: (0x00, 0x00, "ro"),  # battery voltage, 12 bits, 1.1 mV/step
        0x79: (0x00, 0x00, "ro"),
        0x82: (0x83, 0xFF, "rw"),  # ADC enable 1: 7 batt V, 6 batt I, 5/4 ACIN, 3/2 VBUS, 1 APS, 0 TS
        0x83: (0x80, 0x8F, "rw"),  # ADC enable 2: 7 temperature, 3..0 GPIO0..3
    }
    BATT_REGS = (0x78, 0x79)
    BATT_ADC = (0x82, 7)

    def rail_on(self, bit: int) -> bool:
        return bool(self.regs[0x12] >> bit & 1)

    def dcdc1_mv(self) -> int:
        return 700 + (self.regs[0x26] & 0x7F) * 25


class AXP2101(_Axp):
    MAP = {
        0x00: (0x00, 0x00, "ro"),  # PMU status 1: 5 VBUS good
        0x18: (0x0A, 0x0F, "rw"),  # 3 gauge, 2 button battery (VBACKUP) charge, 1 cell charge, 0 watchdog
        0x30: (0x03, 0x3F, "rw"),  # ADC channels: 0 batt V, 1 TS, 2 VBUS, 3 VSYS, 4 die temp, 5 GPADC
        0x34: (0x00, 0x00, "ro"),  # battery voltage, 14 bits, mV
        0x35: (0x00, 0x00, "ro"),
        0x40: (0xFF, 0xFF, "rw"),  # IRQ enable 0, reset 0xFF
        0x41: (0xFC, 0xFF, "rw"),  # IRQ enable 1, reset 0xFC
        0x42: (0x5F, 0xDF, "rw"),  # IRQ enable 2, reset 0x5F (bit 5 reserved)
        0x48: (0x00, 0xFF, "w1c"),  # IRQ status 0..2
        0x49: (0x00, 0xFF, "w1c"),
        0x4A: (0x00, 0xFF, "w1c"),
        0x50: (0x0E, 0x1F, "rw"),  # TS pin: 4 fixed input, 3:2 current source (eFuse), 1:0 current 10b
        0x80: (0x1F, 0x7F, "rw"),  # DCDC1..5 enable (bits 0..4; eFuse)
        0x90: (0xFF, 0xFF, "rw"),  # ALDO1..4, BLDO1..2, CPUSLDO, DLDO1 enable (eFuse)
        0x91: (0x01, 0x01, "rw"),  # DLDO2 enable
        0x92: (0x00, 0x1F, "rw"),  # ALDO1..4 voltage 0.5 V + n x 0.1 V
        0x93: (0x00, 0x1F, "rw"),
        0x94: (0x00, 0x1F, "rw"),
        0x95: (0x00, 0x1F, "rw"),
    }
    BATT_REGS = (0x34, 0x35)
    BATT_ADC = (0x30, 0)
