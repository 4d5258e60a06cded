# Standard constructions only, from hashlib.sha256 and an AES-128 block function:
#   HMAC-SHA256 (RFC 2104), HKDF-Expand (RFC 5869 s2.3),
#   AES-128-CTR (NIST SP 800-38A s6.5) built from AES-ECB, because MicroPython's
#   cryptolib on ESP32 offers ECB and CBC only (MICROPY_PY_CRYPTOLIB_CTR is off).
# Runs unchanged on CPython and MicroPython.
import hashlib

_IPAD = bytes(0x36 for _ in range(64))
_OPAD = bytes(0x5C for _ in range(64))


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def hmac_sha256(key, msg):
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(_xor(key, _IPAD))
    inner.update(msg)
    outer = hashlib.sha256(_xor(key, _OPAD))
    outer.update(inner.digest())
    return outer.digest()


def hkdf_extract(salt, ikm):
    return hmac_sha256(salt, ikm)


def hkdf_expand(prk, info, length):
    out = b""
    t = b""
    i = 1
    while len(out) < length:
        t = hmac_sha256(prk, t + info + bytes((i,)))
        out += t
        i += 1
    return out[:length]


def ecb_block(key):
    """Return f(block16) -> AES-128-ECB encryption of block16 (cryptolib, on the device)."""
    import cryptolib  # noqa: PLC0415  (absent on CPython and the WebAssembly port)

    aes = cryptolib.aes(key, 1)  # 1 = MODE_ECB; one object only ever encrypts (CTR needs no decrypt)
    return aes.encrypt


def ctr_xor(block, nonce14, data):
    """AES-CTR: XOR data with E(nonce14 || i) for i = 0, 1, ... (i as 16-bit big-endian)."""
    out = bytearray(len(data))
    n = 0
    pos = 0
    while pos < len(data):
        ks = block(nonce14 + bytes((n >> 8, n & 0xFF)))
        end = min(pos + 16, len(data))
        for j in range(pos, end):
            out[j] = data[j] ^ ks[j - pos]
        pos = end
        n += 1
    return bytes(out)
