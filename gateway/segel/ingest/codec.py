"""Per-device frame codec for the ingest hot path: the same bytes and checks as
`segel.protocol.verify_and_decode` / `encode`, without building a new AES-CTR cipher per frame.

Every v1 body fits in one AES block, so the CTR keystream is one AES-ECB encryption of the
counter block with index 0 (docs/protocol.md, *Cryptography*); the ECB context and a keyed
HMAC are made once per device and copied per frame. Tested against the golden vectors and
against `segel.protocol` on random frames (tests/gateway/test_fastframe.py).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from segel import protocol
from segel.protocol import BODY_LEN, HEADER_LEN, MAC_LEN, FrameError, RejectReason


class FrameCodec:
    def __init__(self, keys: protocol.DeviceKeys) -> None:
        self._ecb = Cipher(algorithms.AES(keys.enc_key), modes.ECB()).encryptor()
        self._mac = hmac.new(keys.mac_key, digestmod=hashlib.sha256)

    def _keystream(self, ftype: int, device_id: int, counter: int) -> bytes:
        block = (b"SG" + (b"\x01" if ftype >= 8 else b"\x00") + device_id.to_bytes(3, "big")
                 + counter.to_bytes(3, "big") + bytes(7))
        return self._ecb.update(block)

    def _sign(self, data: bytes) -> bytes:
        h = self._mac.copy()
        h.update(data)
        return h.digest()[:MAC_LEN]

    def verify_and_decode(self, frame: bytes, hdr: protocol.Header | None = None) -> protocol.Frame:
        """`hdr`: the frame's already parsed header (saves parsing it twice)."""
        if hdr is None:
            hdr = protocol.parse_header(frame)
        self.verify(frame, hdr)
        return self.decode(frame, hdr)

    def verify(self, frame: bytes, hdr: protocol.Header) -> None:
        """The MAC check alone (raises FrameError bad_mac)."""
        n = HEADER_LEN + BODY_LEN[hdr.type]
        if not hmac.compare_digest(self._sign(frame[:n]), frame[n:]):
            raise FrameError(RejectReason.BAD_MAC, f"MAC does not verify for device {hdr.device_id:06x}")

    def decode(self, frame: bytes, hdr: protocol.Header) -> protocol.Frame:
        """Decrypt and decode the body of a frame whose MAC verified."""
        blen = BODY_LEN[hdr.type]
        n = HEADER_LEN + blen
        ks = self._keystream(hdr.type, hdr.device_id, hdr.counter)
        plain = (int.from_bytes(frame[HEADER_LEN:n], "big") ^ int.from_bytes(ks[:blen], "big")).to_bytes(blen, "big")
        return protocol.Frame(hdr, protocol.decode_body(hdr.type, plain))

    def encode(self, device_id: int, counter: int, dev_time: int, body: protocol.Body) -> bytes:
        ftype, plain = protocol.encode_body(body)
        if not 0 <= counter <= protocol.COUNTER_MAX:
            raise ValueError(f"counter {counter} exhausted (max {protocol.COUNTER_MAX}): re-key with a new key epoch")
        ks = self._keystream(ftype, device_id, counter)
        hdr = (bytes(((protocol.VERSION << 4) | ftype,)) + device_id.to_bytes(3, "big") + counter.to_bytes(3, "big")
               + dev_time.to_bytes(4, "big"))
        signed = hdr + bytes(a ^ b for a, b in zip(plain, ks))
        return signed + self._sign(signed)
