# AES-128 block encryption in pure Python (FIPS-197), for MicroPython builds without cryptolib
# (the WebAssembly port the tests run on). Test-only: the device uses cryptolib's hardware AES.
# Runs on CPython and MicroPython; checked against FIPS-197 Appendix C.1 and the cryptography package.


def _xtime(a):
    a <<= 1
    return (a ^ 0x11B) if a & 0x100 else a


def _sbox():
    # S-box from the multiplicative inverse in GF(2^8) and the affine transform
    s = bytearray(256)
    p = q = 1
    while True:
        p = p ^ _xtime(p)  # p *= 3
        q ^= q << 1  # q /= 3
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q ^ ((q << 1) | (q >> 7)) ^ ((q << 2) | (q >> 6)) ^ ((q << 3) | (q >> 5)) ^ ((q << 4) | (q >> 4))
        s[p] = (x ^ 0x63) & 0xFF
        if p == 1:
            break
    s[0] = 0x63
    return bytes(s)


SBOX = _sbox()
XT = bytes(_xtime(i) & 0xFF for i in range(256))


def expand(key):
    w = bytearray(key)
    rcon = 1
    for i in range(16, 176, 4):
        t = w[i - 4 : i]
        if i % 16 == 0:
            t = bytearray((SBOX[t[1]] ^ rcon, SBOX[t[2]], SBOX[t[3]], SBOX[t[0]]))
            rcon = XT[rcon]
        for j in range(4):
            w.append(w[i - 16 + j] ^ t[j])
    return bytes(w)


_S = bytearray(16)  # state buffers reused across calls: no heap churn but the 16-byte result
_T = bytearray(16)


def encrypt_block(rk, block):
    s, t = _S, _T
    i = 0
    while i < 16:
        s[i] = block[i] ^ rk[i]
        i += 1
    r = 1
    while r < 11:
        # SubBytes + ShiftRows (column-major state: byte c*4+row)
        c = 0
        while c < 4:
            row = 0
            while row < 4:
                t[c * 4 + row] = SBOX[s[((c + row) & 3) * 4 + row]]
                row += 1
            c += 1
        if r < 10:  # MixColumns
            c = 0
            while c < 16:
                a0 = t[c]  # one name per line: a tuple assignment would allocate
                a1 = t[c + 1]
                a2 = t[c + 2]
                a3 = t[c + 3]
                x = a0 ^ a1 ^ a2 ^ a3
                t[c] = a0 ^ x ^ XT[a0 ^ a1]
                t[c + 1] = a1 ^ x ^ XT[a1 ^ a2]
                t[c + 2] = a2 ^ x ^ XT[a2 ^ a3]
                t[c + 3] = a3 ^ x ^ XT[a3 ^ a0]
                c += 4
        k = r * 16
        i = 0
        while i < 16:
            s[i] = t[i] ^ rk[k + i]
            i += 1
        r += 1
    return bytes(s)


def ecb_block(key):
    """Same shape as segelfw.crypto.ecb_block: key -> f(block16) -> ciphertext."""
    rk = expand(bytes(key))
    return lambda b: encrypt_block(rk, b)
