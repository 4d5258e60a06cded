"""The base-station role and its serial framing on real MicroPython (the WebAssembly port), checked
byte for byte against the bridge's independent CPython implementation (cobs + binascii)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from segel.bridge import wire

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tools" / "mpy-node" / "run.mjs"

SCRIPT = r"""
import json, sys
from segelfw import serialframe as sf
from segelfw.basestation import BaseStation

class RxPacket(bytearray):  # as micropython-lib lora builds it: a bytearray with attributes
    pass

IN = json.loads(sys.argv[1] if len(sys.argv) > 1 else INPUT)

class Port:
    def __init__(self):
        self.out = bytearray()
        self.inq = []
    def write(self, b):
        self.out.extend(b)
        return len(b)
    def read(self):
        return self.inq.pop(0) if self.inq else None

class Radio:
    def __init__(self, pkts):
        self.pkts = pkts
        self.sent = []
    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        return self.pkts.pop(0) if self.pkts else None
    def send(self, packet, tx_at_ms=None):
        self.sent.append(bytes(packet))
        return 0

class Clock:
    def __init__(self):
        self.t = 1000
    def ticks_ms(self):
        return self.t

pkts = []
for i, (h, crc_err) in enumerate(IN["packets"]):
    p = RxPacket(bytes.fromhex(h))
    p.ticks_ms, p.snr, p.rssi, p.crc_error = 1000, -9 + i, -100 - i, crc_err
    pkts.append(p)
clock = Clock()
port = Port()
radio = Radio(pkts)
cfg = {"device_id": "b00042", "region": "AS923-2", "sf": 9, "channel": 921600, "ack_window_ms": 2500, "preamble": 8}
bs = BaseStation(radio, port, cfg, boot_id=0xBEEF, clock=clock, health_interval_ms=60000)
for _ in range(len(IN["packets"])):
    bs.poll(0)
# the host's records: noise first, then an ack and a downlink, split at odd places
stream = bytes.fromhex(IN["from_host"])
port.inq = [stream[i:i + 7] for i in range(0, len(stream), 7)]
clock.t = 1500
while port.inq:
    bs.poll(0)
# framing alone: encode and decode a few payloads
dec = sf.Decoder()
own = [bytes(i % 256 for i in range(n)) for n in (1, 2, 253, 254, 255, 300)]
back = dec.feed(b"\x05\x06junk" + b"".join(sf.encode(p) for p in own))
print(json.dumps({"wire": bytes(port.out).hex(), "sent": [s.hex() for s in radio.sent], "pending": len(bs.order),
                  "crc_errors": bs.crc_errors, "rx": bs.rx_packets, "roundtrip": back == own,
                  "encoded": [sf.encode(p).hex() for p in own], "crc": sf.check(b"123456789")}))
"""


def test_base_role_and_framing_on_real_micropython(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "tools/mpy-node/node_modules/@micropython").is_dir():
        pytest.skip("node or the MicroPython WebAssembly port is not installed (scripts/test.sh installs them)")
    frames = [bytes([0x11]) + (0x101 + i).to_bytes(3, "big") + bytes(range(i, i + 20)) for i in range(4)]
    ack0 = wire.ack(0xBEEF, 0)  # acknowledge the first uplink record
    down = wire.down(7, "000102", bytes(range(22)))  # an ack frame for device 000102, heard just now
    inp = {"packets": [[frames[0].hex(), False], [frames[1].hex(), False], [frames[2].hex(), True], [frames[3].hex(), False]],
           "from_host": (b"\x00\x13\x37\x00garbage" + ack0 + down).hex()}
    script = tmp_path / "mp_base.py"
    script.write_text(f"INPUT = {json.dumps(json.dumps(inp))}\n" + SCRIPT)
    r = subprocess.run([node, str(RUNNER), "--mount", f"{ROOT / 'firmware'}:/fw", "--path", "/fw", str(script)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])

    # what the board wrote, read by the bridge's own decoder
    dec = wire.Decoder()
    recs = [wire.parse(p) for p in dec.feed(bytes.fromhex(out["wire"]))]
    assert dec.crc_errors == 0 and dec.framing_errors == 0
    hello = [r for r in recs if isinstance(r, wire.Hello)]
    assert hello[0] == wire.Hello(0xBEEF, "1.0", 921600, 9, "b00042", "AS923-2")
    ups = [r for r in recs if isinstance(r, wire.Uplink)]
    assert [u.frame for u in ups] == [frames[0], frames[1], frames[3]]  # the CRC-error packet is counted, not sent
    assert [(u.seq, u.rssi, u.snr, u.freq_khz, u.sf) for u in ups] == [(0, -100.0, -2.25, 921600, 9), (1, -101.0, -2.0, 921600, 9),
                                                                         (2, -103.0, -1.5, 921600, 9)]
    assert out["crc_errors"] == 1 and out["rx"] == 4
    assert out["pending"] == 2  # record 0 acknowledged; 1 and 2 wait for their ack
    assert out["sent"] == [bytes(range(22)).hex()]  # the downlink went on air, inside the window
    done = [r for r in recs if isinstance(r, wire.TxDone)]
    assert done == [wire.TxDone(0xBEEF, 7, "sent")]
    # framing: MicroPython's encoder gives the same bytes as the cobs package + binascii
    own = [bytes(i % 256 for i in range(n)) for n in (1, 2, 253, 254, 255, 300)]
    assert out["encoded"] == [wire.encode(p).hex() for p in own]
    assert out["roundtrip"] is True and out["crc"] == 0xD64E
