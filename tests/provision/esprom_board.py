"""An ESP32 / ESP32-S3 in download mode, on a pseudo-terminal: answers the serial bootloader
protocol (SLIP frames, ESP_CMDS of esptool's loader) well enough for esptool's real code to
connect, detect the chip, upload and greet its flasher stub, write compressed data, check MD5s
and reset. Written data lands in an in-memory flash, so a test can read back what `segel flash`
put where. Only the chip is simulated; the host side is esptool itself.

The flash size is read as on the real chip: the host programs the SPI controller's "user
command" registers (SPI_USR, SPI_USR2 = command byte, W0 cleared) through WRITE_REG, starts it
with SPI_CMD_USR in SPI_CMD, polls until the bit clears and reads the answer from W0 through
READ_REG (esptool loader.py run_spiflash_command). The simulated controller runs the command
when the bit is set: RDID (0x9F) answers the JEDEC id, manufacturer | type << 8 | capacity << 16
with capacity = log2(bytes) (0x16 = 4 MiB, 0x17 = 8 MiB), as the flash chip does; the ROM and the
stub answer register reads alike. MicroPython 1.26+ reads the same id at boot
(esp_flash_get_physical_size)."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib

from esptool.targets import CHIP_DEFS
from ptyboard import PtyBoard

SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
MEM_END = 0x06
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END, SPI_FLASH_MD5, GET_SECURITY_INFO = 0x10, 0x11, 0x12, 0x13, 0x14
ERASE_FLASH = 0xD0
ESP32_MAGIC_REG, ESP32_MAGIC = 0x40001000, 0x00F01D83
CHIP_IDS = {"esp32": 0, "esp32s3": 9}
SPI_CMD_USR = 1 << 18  # SPI_CMD register: start / busy
SPIFLASH_RDID, SPIFLASH_RDSR, SPIFLASH_RDSFDP = 0x9F, 0x05, 0x5A
WINBOND, W25Q_TYPE = 0xEF, 0x40


def slip(payload: bytes) -> bytes:
    return b"\xc0" + payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class EspRomBoard(PtyBoard):
    def __init__(self, chip: str = "esp32", flash_mb: int = 4) -> None:
        self.chip = chip
        self.flash = bytearray(b"\xff") * (flash_mb << 20)
        self.flash_size_id = (flash_mb << 20).bit_length() - 1  # JEDEC capacity byte: 0x16 = 4 MB
        cls = CHIP_DEFS[chip]
        self._spi_cmd = cls.SPI_REG_BASE
        self._spi_usr2 = cls.SPI_REG_BASE + cls.SPI_USR2_OFFS
        self._w0 = cls.SPI_REG_BASE + cls.SPI_W0_OFFS
        self.regs: dict[int, int] = {}
        self.spi_commands: list[int] = []  # flash commands the host ran through the SPI controller
        self.stub = False
        self.commands: list[int] = []
        self._write_at = 0
        self._inflate: zlib._Decompress | None = None
        super().__init__()

    def _reply(self, op: int, val: int = 0, data: bytes = b"", ok: bool = True, unsupported: bool = False) -> None:
        status = b"\x01\x05" if unsupported else (b"\x00\x00" if ok else b"\x01\x00")
        if not self.stub:
            status += b"\x00\x00"  # ROMs other than ESP8266's send 2 reserved bytes
        body = data + status
        os.write(self.master, slip(struct.pack("<BBHI", 1, op, len(body), val) + body))

    def _handle(self, pkt: bytes) -> None:
        if len(pkt) < 8 or pkt[0] != 0:
            return
        op, size, _chk = struct.unpack_from("<BHI", pkt, 1)
        data = pkt[8:8 + size]
        self.commands.append(op)
        if op == SYNC:  # a new session: the ROM runs again (the stub is gone after a reset)
            self.stub = False
            for _ in range(8):
                self._reply(op, val=0x20120707)
        elif op == GET_SECURITY_INFO:
            if self.chip == "esp32":
                self._reply(op, unsupported=True)
            else:
                self._reply(op, data=struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, CHIP_IDS[self.chip], 0))
        elif op == READ_REG:
            (addr,) = struct.unpack_from("<I", data)
            self._reply(op, val=ESP32_MAGIC if addr == ESP32_MAGIC_REG else self.regs.get(addr, 0))
        elif op == WRITE_REG:
            addr, value, mask = struct.unpack_from("<III", data)
            self.regs[addr] = (self.regs.get(addr, 0) & ~mask) | (value & mask)
            if addr == self._spi_cmd and value & SPI_CMD_USR:
                self._spi_user_command(self.regs.get(self._spi_usr2, 0) & 0xFF)
                self.regs[addr] &= ~SPI_CMD_USR  # done: the controller clears the bit
            self._reply(op)
        elif op == MEM_END:
            self._reply(op)
            self.stub = True
            os.write(self.master, slip(b"OHAI"))
        elif op == FLASH_DEFL_BEGIN:
            _size, _blocks, _bs, offset = struct.unpack_from("<IIII", data)
            self._write_at = offset
            self._inflate = zlib.decompressobj()
            self._reply(op)
        elif op == FLASH_DEFL_DATA:
            assert self._inflate is not None
            n = struct.unpack_from("<I", data)[0]
            out = self._inflate.decompress(data[16:16 + n])
            self.flash[self._write_at:self._write_at + len(out)] = out
            self._write_at += len(out)
            self._reply(op)
        elif op == SPI_FLASH_MD5:
            addr, size = struct.unpack_from("<II", data)
            digest = hashlib.md5(self.flash[addr:addr + size]).digest()
            self._reply(op, data=digest if self.stub else digest.hex().encode())
        elif op == ERASE_FLASH:
            self.flash[:] = b"\xff" * len(self.flash)
            self._reply(op)
        else:  # MEM_BEGIN/DATA, SPI_ATTACH, SPI_SET_PARAMS, CHANGE_BAUDRATE, FLASH_DEFL_END, ...
            self._reply(op)

    def _spi_user_command(self, command: int) -> None:
        """The flash chip's answer to a command run through the SPI controller, left in W0."""
        self.spi_commands.append(command)
        if command == SPIFLASH_RDID:
            self.regs[self._w0] = (self.flash_size_id << 16) | (W25Q_TYPE << 8) | WINBOND
        elif command == SPIFLASH_RDSR:
            self.regs[self._w0] = 0  # not busy, not write-protected
        elif command == SPIFLASH_RDSFDP:
            self.regs[self._w0] = 0xFFFFFFFF  # no SFDP table

    def _serve(self) -> None:
        buf = b""
        while not self._stop:
            try:
                buf += os.read(self.master, 65536)
            except OSError:
                return
            while True:
                start = buf.find(b"\xc0")
                if start < 0:
                    buf = b""
                    break
                end = buf.find(b"\xc0", start + 1)
                if end < 0:
                    buf = buf[start:]
                    break
                frame = buf[start + 1:end]
                if not frame:  # two delimiters in a row: the second one opens the next frame
                    buf = buf[end:]
                    continue
                buf = buf[end + 1:]
                self._handle(frame.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb"))
