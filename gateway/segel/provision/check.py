"""`segel check`: ask a freshly flashed tracker, over its USB serial port, who and how it is.

Talks to MicroPython's raw REPL through mpremote's serial transport (Ctrl-C stops the running
firmware, the probe runs, the technician presses RST afterwards). The probe (probe.py) reports
the device's config and board file, the firmware and MicroPython versions, the firmware's own
self-test (`segelfw.selftest.report()`) when it has one, and measurements of the PMU rails,
battery, seal inputs, GNSS and radio; `checklist.py` turns them into the first-board checklist.
It never prints the device key.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

from segel import paths
from segel.provision import checklist, devconfig, roles
from segel.provision.probe import MARK, probe_source


class CheckError(RuntimeError):
    """The tracker could not be reached or did not answer the probe."""


@dataclass
class CheckReport:
    device_id: str | None
    board: str | None
    key_epoch: int | None
    firmware: str | None
    micropython: str | None
    selftest: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_output(cls, text: str) -> CheckReport:
        line = next((ln for ln in text.splitlines() if ln.startswith(MARK)), None)
        if line is None:
            raise CheckError(f"the tracker did not answer the probe; it printed: {text.strip()[:300]!r}")
        d = json.loads(line[len(MARK):])
        return cls(d.get("device_id"), d.get("board"), d.get("key_epoch"), d.get("firmware"), d.get("micropython"),
                   d.get("selftest"), list(d.get("errors", [])), d)

    def lines(self) -> list[str]:
        """Who the tracker says it is."""
        return [
            f"device id      {self.device_id or '?'}",
            f"key epoch      {self.key_epoch if self.key_epoch is not None else '?'}",
            f"board          {self.board or '?'}",
            f"firmware       {self.firmware or '?'}  (MicroPython {self.micropython or '?'})",
        ]

    def items(self, expect_device: str | None = None, expect_epoch: int | None = None,
              gnss_seconds: int = 3) -> list[checklist.Item]:
        """The first-board checklist for this report, against the tracker's board file (from this
        gateway's hardware/boards) and the firmware's region rules."""
        board = None
        if self.board:
            try:
                board = devconfig.load_board(self.board)
            except devconfig.ProvisionError:
                board = None
        paths.import_firmware()
        from segelfw import airtime

        wanted = None
        if self.raw.get("role") in roles.ROLES:
            fw = paths.firmware_dir()
            try:
                wanted = {roles.module_path(m, fw)[:-3] + ".mpy" for m in roles.role_modules(fw, str(self.raw["role"]))}
            except roles.RoleError:
                wanted = None
        return checklist.evaluate(self.raw, board, airtime.REGIONS, expect_device, expect_epoch, gnss_seconds,
                                  wanted)


def run_probe(port: str, timeout: float = 10.0, baud: int = 115200, gnss_seconds: int = 3) -> CheckReport:
    """Run the probe on the tracker at `port` (mpremote's serial transport, raw REPL)."""
    import serial
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        tr = SerialTransport(port, baudrate=baud, timeout=timeout)
    except (serial.SerialException, OSError) as e:
        raise CheckError(f"cannot open {port}: {e}. Check the cable and the port name "
                         "(`ls /dev/ttyUSB* /dev/ttyACM*`).") from e
    except BaseException as e:  # mpremote raises TransportError for a port it cannot open
        raise CheckError(f"cannot open {port}: {e}") from e
    chatter = io.StringIO()  # mpremote prints raw bytes on some failures; keep them out of our output
    try:
        try:
            with contextlib.redirect_stdout(chatter):
                tr.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
                out, err = tr.exec_raw(probe_source("/", gnss_seconds), timeout=timeout + gnss_seconds)
        except TransportError as e:
            raise CheckError(f"no MicroPython REPL answered on {port} ({e}): is the tracker powered and booted "
                             "(press RST), and no other program holding the port?") from e
        if err:
            raise CheckError(f"the probe failed on the tracker: {err.decode(errors='replace').strip()}")
        return CheckReport.from_output(out.decode(errors="replace"))
    finally:
        try:
            tr.exit_raw_repl()
        except Exception:  # noqa: S110 (best effort on a port that may be gone)
            pass
        tr.close()
