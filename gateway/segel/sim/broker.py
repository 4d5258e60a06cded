"""An embedded MQTT broker (amqtt, pure Python) on a free loopback port, in a thread of this process.

Good enough for the demo and tests: amqtt 0.12 keeps no persistent sessions across a gateway
restart, which the demo never does, and trackers resend until acknowledged anyway. Production
and the durability tests use Mosquitto (`segel demo --broker mqtt://...`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import warnings
from typing import Any


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


class EmbeddedBroker:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="segel-broker", daemon=True)
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)  # amqtt logs every connect at INFO/WARNING
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from amqtt.broker import Broker

        cfg = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}", "max_connections": 0}},
            # only anonymous access on loopback: the demo's broker is never reachable from outside
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        async def _start() -> Any:
            b = Broker(cfg, loop=self._loop)
            await b.start()
            return b

        self._thread.start()
        self._broker = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout)
            except Exception:  # noqa: BLE001 - a broker that fails to shut down cleanly is still gone
                logging.getLogger("segel.sim").debug("embedded broker shutdown", exc_info=True)
            self._broker = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
