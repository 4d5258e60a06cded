"""A tracker on a pseudo-terminal: speaks MicroPython's raw REPL protocol (docs/reference/
repl.rst) and runs what it receives on real MicroPython (the WebAssembly port under Node) with a
device image's files as its file system. So `segel check` is tested through mpremote's real
serial transport and the real probe on real MicroPython; only the UART is simulated, and, given a
`standin` folder (tests/provision/standin: `machine` with the board's chips at the register level
plus its scenario.json), the hardware behind `machine`."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from ptyboard import PtyBoard

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tools" / "mpy-node" / "run.mjs"
BANNER = b"raw REPL; CTRL-B to exit\r\n>"


class RawReplBoard(PtyBoard):
    def __init__(self, files_dir: Path, node: str, standin: Path | None = None) -> None:
        self.files_dir = files_dir
        self.node = node
        self.standin = standin
        self.executed: list[str] = []
        super().__init__()

    def _run(self, code: str) -> tuple[bytes, bytes]:
        self.executed.append(code)
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
            fh.write(code)
        try:
            extra = ["--mount", f"{self.standin}:/standin", "--path", "/standin"] if self.standin else []
            res = subprocess.run([self.node, str(RUNNER), "--mount", f"{self.files_dir}:/", "--path", "/lib", *extra,
                                  fh.name], capture_output=True, timeout=60)
        finally:
            os.unlink(fh.name)
        return res.stdout.replace(b"\n", b"\r\n"), res.stderr

    def _serve(self) -> None:
        raw = False
        code = b""
        buf = b""
        while not self._stop:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            buf += data
            while buf:
                if not raw:
                    i = buf.find(b"\x01")
                    if i < 0:
                        buf = b""
                        break
                    buf = buf[i + 1:]
                    raw = True
                    code = b""
                    os.write(self.master, BANNER)
                    continue
                if buf.startswith(b"\x05A\x01"):  # raw-paste request: not supported here
                    buf = buf[3:]
                    os.write(self.master, b"R\x00")
                    continue
                # the first control byte decides: ^A (re)enter raw, ^B leave, ^C interrupt, ^D run
                hits = [i for i in (buf.find(c) for c in (b"\x01", b"\x02", b"\x03", b"\x04")) if i >= 0]
                if not hits:
                    code += buf
                    buf = b""
                    break
                i = min(hits)
                ctl = buf[i:i + 1]
                code += buf[:i]
                buf = buf[i + 1:]
                if ctl == b"\x01":
                    code = b""
                    os.write(self.master, BANNER)
                    continue
                if ctl == b"\x02":
                    raw = False
                    continue
                if ctl == b"\x03":
                    code = b""
                    continue
                os.write(self.master, b"OK")
                out, err = self._run(code.decode().replace("\r", ""))
                code = b""
                os.write(self.master, out + b"\x04" + err + b"\x04>")
