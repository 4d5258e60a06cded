"""Free TCP ports for the servers Segel starts on this machine (demo, trials, tests, benchmarks).

`bind(port 0)` returns a port from the kernel's ephemeral range, the same range every outgoing
connection takes its local port from. Between picking such a port and the server binding it,
any client connection on the machine may take it, and the server fails with "address already in
use" (seen in CI: nats-server's monitor port, taken while a benchmark's clients connected).

So a port is picked below the ephemeral range, where the kernel never puts a client's end, is
checked by binding it, and is never handed out twice by one process. What remains (another
process picking the same number in the same instant) is why starters also retry on a bind
failure (`address_in_use`).
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

LOWEST = 10_000  # below are well-known and registered services
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_given: set[int] = set()
_lock = threading.Lock()
_random = random.SystemRandom()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for clients' local ports (Linux default 32768-60999)."""
    try:
        low, high = (int(x) for x in _RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on, outside the ephemeral range if there is room."""
    low, high = ephemeral_range()
    spans = [(a, b) for a, b in ((LOWEST, low - 1), (high + 1, 65535)) if b - a >= 1000]
    with _lock:
        for _ in range(200):
            a, b = _random.choice(spans) if spans else (LOWEST, 65535)
            port = _random.randint(a, b)
            if port not in _given and _bindable(host, port):
                _given.add(port)
                return port
        with socket.socket() as s:  # every try was taken: let the kernel choose
            s.bind((host, 0))
            port = int(s.getsockname()[1])
            _given.add(port)
            return port


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct free ports."""
    return [free_port(host) for _ in range(n)]


def address_in_use(text: str) -> bool:
    """Whether a server's log or error says its port was taken (Go, C and Python wordings)."""
    t = text.lower()
    return "address already in use" in t or "eaddrinuse" in t or "could not bind" in t
