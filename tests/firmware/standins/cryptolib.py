"""Stand-in for MicroPython's `cryptolib` on CPython (AES-ECB through the `cryptography` package)."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class aes:  # noqa: N801  (MicroPython's name)
    def __init__(self, key: bytes, mode: int, IV: bytes | None = None) -> None:  # noqa: N803
        if mode != 1:
            raise ValueError("this stand-in does ECB (mode 1) only, as the firmware uses")
        self._enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()

    def encrypt(self, in_buf: bytes, out_buf: bytearray | None = None) -> bytes:
        data = bytes(in_buf)
        if len(data) % 16:
            raise ValueError("blksize % 16")
        return self._enc.update(data)
