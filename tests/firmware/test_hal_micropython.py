"""hal.RxPacket (a bytearray subclass, as micropython-lib lora's) constructs on real MicroPython,
where bytearray has no Python-level __init__, and carries its metadata."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
from segelfw.hal import RxPacket
p = RxPacket(b"\\x01\\x02\\x03", ticks_ms=5, snr=20, rssi=-90, valid_crc=False)
print("RX", bytes(p).hex(), p.ticks_ms, p.snr, p.rssi, p.crc_error)
"""


def test_rxpacket_on_micropython(tmp_path: Path) -> None:
    script = tmp_path / "rx.py"
    script.write_text(SCRIPT)
    r = subprocess.run(["node", str(ROOT / "tools" / "mpy-node" / "run.mjs"), "--mount", f"{ROOT / 'firmware'}:/fw",
                        "--path", "/fw", str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "RX 010203 5 20 -90 True" in r.stdout


def test_rxpacket_on_cpython() -> None:
    from segelfw.hal import RxPacket

    p = RxPacket(b"\x01\x02\x03", ticks_ms=5, snr=20, rssi=-90, valid_crc=False)
    assert (bytes(p), p.rssi, p.crc_error) == (b"\x01\x02\x03", -90, True)
