"""The firmware's hand-built constructions against published test vectors and CPython's stdlib."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from segelfw import crypto


def test_hmac_sha256_rfc4231_case2() -> None:
    mac = crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hmac_long_key_matches_stdlib() -> None:
    key = bytes(range(131))
    assert crypto.hmac_sha256(key, b"x" * 300) == hmac.new(key, b"x" * 300, hashlib.sha256).digest()


def test_hkdf_rfc5869_case1() -> None:
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(13))
    info = bytes(range(0xF0, 0xFA))
    prk = crypto.hkdf_extract(salt, ikm)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    okm = crypto.hkdf_expand(prk, info, 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_ctr_from_ecb_nist_sp800_38a_f51() -> None:
    # F.5.1 CTR-AES128.Encrypt: our counter block is nonce14 || 16-bit index, so check the first
    # block against NIST and the whole stream against the cryptography package.
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    block = lambda b: ecb.update(bytes(b))  # noqa: E731
    nonce14 = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfd")
    # NIST's initial counter block ends fe ff; ours ends 00 00, so rebuild NIST's first block
    pt = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    ks = block(bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"))
    assert bytes(a ^ b for a, b in zip(pt, ks)).hex() == "874d6191b620e3261bef6864990db6ce"
    data = bytes(range(200))
    ref = Cipher(algorithms.AES(key), modes.CTR(nonce14 + b"\0\0")).encryptor().update(data)
    assert crypto.ctr_xor(block, nonce14, data) == ref
