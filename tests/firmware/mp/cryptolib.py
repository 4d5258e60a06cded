# `cryptolib` for the WebAssembly MicroPython (which has none): AES-128-ECB from aes128.py, with
# the ESP32 port's call shape (aes(key, 1).encrypt(block)).
import aes128


class aes:
    def __init__(self, key, mode, IV=None):
        if mode != 1:
            raise ValueError("ECB (mode 1) only, as the firmware uses")
        self._f = aes128.ecb_block(bytes(key))

    def encrypt(self, in_buf, out_buf=None):
        return self._f(bytes(in_buf))
