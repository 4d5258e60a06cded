"""A Semtech UDP packet-forwarder client, written from PROTOCOL.TXT (Lora-net/packet_forwarder):
what an 8-channel gateway sends the server, and what it expects back."""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any

PUSH_DATA, PUSH_ACK, PULL_DATA, PULL_RESP, PULL_ACK, TX_ACK = 0, 1, 2, 3, 4, 5


class ForwarderClient:
    def __init__(self, server: tuple[str, int], eui: str, version: int = 2) -> None:
        self.server = server
        self.eui = bytes.fromhex(eui)
        self.version = version
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3.0)
        self.downlinks: list[bytes] = []  # PULL_RESPs that arrived while waiting for another answer

    def _token(self) -> bytes:
        return os.urandom(2)

    def raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def recv(self, timeout: float = 3.0) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65535)
        except TimeoutError:
            return None

    def push(self, rxpk: list[dict[str, Any]] | None = None, stat: dict[str, Any] | None = None,
             body: bytes | None = None) -> tuple[bytes, bytes | None]:
        """PUSH_DATA; -> (token, the answer or None)."""
        tok = self._token()
        doc: dict[str, Any] = {}
        if rxpk is not None:
            doc["rxpk"] = rxpk
        if stat is not None:
            doc["stat"] = stat
        self.raw(bytes((self.version,)) + tok + bytes((PUSH_DATA,)) + self.eui + (body if body is not None else json.dumps(doc).encode()))
        return tok, self._answer()

    def _answer(self) -> bytes | None:
        while True:
            d = self.recv()
            if d is None or len(d) < 4 or d[3] != PULL_RESP:
                return d
            self.downlinks.append(d)

    def next_downlink(self, timeout: float = 3.0) -> bytes | None:
        if self.downlinks:
            return self.downlinks.pop(0)
        return self.recv(timeout)

    def pull(self) -> tuple[bytes, bytes | None]:
        tok = self._token()
        self.raw(bytes((self.version,)) + tok + bytes((PULL_DATA,)) + self.eui)
        return tok, self._answer()

    def tx_ack(self, token: bytes, error: str | None = None) -> None:
        body = b"" if error is None else json.dumps({"txpk_ack": {"error": error}}).encode()
        self.raw(bytes((self.version,)) + token + bytes((TX_ACK,)) + self.eui + body)

    def close(self) -> None:
        self.sock.close()


def rxpk(frame: bytes, tmst: int, freq: float = 921.4, sf: int = 10, rssi: int = -100, lsnr: float = 5.5, stat: int = 1,
         time_iso: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"tmst": tmst, "chan": 0, "rfch": 0, "freq": freq, "stat": stat, "modu": "LORA", "datr": f"SF{sf}BW125",
                         "codr": "4/5", "rssi": rssi, "lsnr": lsnr, "size": len(frame), "data": base64.b64encode(frame).decode()}
    if time_iso:
        d["time"] = time_iso
    return d


def parse_pull_resp(d: bytes) -> tuple[int, bytes, dict[str, Any]]:
    assert d[3] == PULL_RESP, d[:4]
    return d[0], d[1:3], json.loads(d[4:])["txpk"]
