"""An embedded MQTT broker (amqtt, pure Python) on a free loopback port: in a thread of this process
(`EmbeddedBroker`) or in a child process of its own (`BrokerProcess`, what `segel demo` uses: amqtt
costs about as much CPU per message as the gateway's whole pipeline, and in its own process it
does not hold the gateway's GIL).

Good enough for the demo and tests: amqtt 0.12 keeps no persistent sessions across a gateway
restart, which the demo never does, and trackers resend until acknowledged anyway. Production
and the durability tests use Mosquitto (`segel demo --broker mqtt://...`).

`MosquittoProcess` runs a private Mosquitto instead when the mosquitto package is installed (what
`segel demo` prefers, issue 17): about 25 µs of CPU per message where amqtt takes about 1.4 ms
per tracker wake, a third of the whole rehearsal's CPU.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from segel.ports import free_port


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


def _serve_child(port: int, conn: Any) -> None:
    """The child process: an EmbeddedBroker until the parent says stop (or goes away)."""
    b = EmbeddedBroker(port)
    try:
        b.start()
    except BaseException as e:  # report, do not hang the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        raise
    conn.send(("ready", port))
    try:
        while True:
            try:
                if conn.poll(1.0) and conn.recv() == "stop":
                    break
            except (EOFError, OSError):  # the parent is gone
                break
    finally:
        b.stop()


class BrokerProcess:
    """The embedded amqtt broker in a child process (spawned: no locks of this process inherited)."""

    def __init__(self, port: int | None = None) -> None:
        import multiprocessing as mp

        self.port = port or free_port()
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve_child, args=(self.port, child), name="segel-broker", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        self.proc.start()
        if not self._conn.poll(timeout):
            self.proc.kill()
            raise ConnectionError(f"the embedded MQTT broker did not start within {timeout:.0f} s")
        kind, body = self._conn.recv()
        if kind != "ready":
            self.proc.join(5)
            raise ConnectionError(f"the embedded MQTT broker failed: {body}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.is_alive():
            try:
                self._conn.send("stop")
            except (OSError, BrokenPipeError):
                pass
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def mosquitto_installed() -> bool:
    return shutil.which("mosquitto") is not None


class MosquittoProcess:
    """A private Mosquitto on a free loopback port: anonymous, no persistence, and no queue or
    in-flight limits (its default of 1,000 queued messages per client drops QoS 1 messages)."""

    def __init__(self, workdir: str | Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self._picked = port is None  # ours to change if another program takes it first
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="segel-mosquitto-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0, tries: int = 3) -> MosquittoProcess:
        for attempt in range(tries):
            try:
                return self._start(timeout)
            except ConnectionError:
                if not self._picked or attempt + 1 == tries or shutil.which("mosquitto") is None:
                    raise
                self.port = free_port()  # it exited: most likely its port was taken since it was picked
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> MosquittoProcess:
        exe = shutil.which("mosquitto")
        if exe is None:
            raise ConnectionError("mosquitto is not installed (apt-get install mosquitto)")
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                        "max_inflight_messages 0\npersistence false\n")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise ConnectionError(f"mosquitto did not start on port {self.port}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> MosquittoProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def segel_traffic(url: str, seconds: float = 2.0) -> list[str]:
    """What a broker carries on the real fleet's topics: the gateway's retained status, bridges'
    retained status, tracker and bridge uplinks heard within `seconds`. A broker that refuses the
    subscription has access control, as only a production broker does: that counts too.
    Used before a simulation publishes anything on a broker it was pointed at."""
    import ssl
    import time
    import uuid

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from segel.edge import topics
    from segel.edge.mqtt import parse_url

    b = parse_url(url)
    seen: list[str] = []
    done = threading.Event()
    refused: list[str] = []
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"segel-sim-probe-{uuid.uuid4().hex[:8]}",
                    protocol=paho.MQTTv311, clean_session=True)
    if b.username:
        c.username_pw_set(b.username, b.password)
    if b.tls:
        c.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    subs = [(t, 0) for t in (topics.GATEWAY_STATUS, topics.TRACKER_UP_SUB, topics.BRIDGE_UP_SUB,
                             topics.BRIDGE_STATUS_SUB)]

    def on_connect(cl: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            refused.append(f"connection refused ({rc})")
            done.set()
            return
        cl.subscribe(subs)

    def on_subscribe(_cl: Any, _u: Any, _mid: Any, codes: Any, _p: Any = None) -> None:
        if any(getattr(r, "is_failure", False) or r == 128 for r in codes):
            refused.append("subscription refused: the broker has access control, as a production broker does")
        done.set()

    def on_message(_cl: Any, _u: Any, msg: Any) -> None:
        if len(seen) < 20:
            seen.append(msg.topic + (" (retained)" if msg.retain else ""))

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    try:
        c.connect(b.host, b.port, keepalive=10)
    except OSError as e:
        raise ConnectionError(f"cannot reach the broker {b.host}:{b.port}: {e}") from None
    c.loop_start()
    try:
        done.wait(10)
        time.sleep(seconds)
    finally:
        c.disconnect()
        c.loop_stop()
    return refused + seen
