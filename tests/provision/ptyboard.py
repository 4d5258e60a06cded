"""A simulated board behind a pseudo-terminal: the tool under test opens `port` with pyserial,
a thread on the master side plays the board (`_serve`, until `_stop`)."""

from __future__ import annotations

import os
import pty
import threading
import tty
from typing import Self


class PtyBoard:
    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        os.close(self.master)
        os.close(self.slave)
