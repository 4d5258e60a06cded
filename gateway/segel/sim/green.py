"""The fleet's WiFi path on one thread: every tracker's wake in a greenlet, the MQTT client driven
by the same loop (issue 17).

A wake mostly waits for the gateway's ack, so the rehearsal needs many wakes in flight; with an OS
thread per wake, every ack meant a condition to notify, a lock to hand over and the interpreter
lock to pass on (futex calls: about a third of the fleet process's CPU went to the kernel). Here
a wake that waits for its ack switches back to the scheduler, which runs the next ready wake or,
when none is ready, lets paho read the socket (non-threaded `client.loop`); an ack makes its
tracker's greenlet ready again. Same firmware code, same MQTT traffic, no thread switches.

`GreenHub` replaces `segel.sim.fleet.MqttHub`; `GreenHub.pool()` replaces the runner's thread pool
(`submit(fn, arg)` -> a future whose `result()` runs the scheduler until that wake is done).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import greenlet  # type: ignore[import-untyped]

from segel.edge import topics
from segel.sim.fleet import Hub, fleet_client

NET_EVERY_S = 0.002  # read the socket at least this often while wakes are ready to run


class _Green(greenlet.greenlet):  # type: ignore[misc]
    task: _Task


class _Task:
    __slots__ = ("g", "value", "error", "done")

    def __init__(self) -> None:
        self.g: Any = None
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = False


class GreenFuture:
    def __init__(self, hub: GreenHub, task: _Task) -> None:
        self.hub, self.task = hub, task

    def result(self) -> Any:
        self.hub.run_until(lambda: self.task.done)
        if self.task.error is not None:
            raise self.task.error
        return self.task.value


class GreenPool:
    """The runner's pool: `with hub.pool() as pool: pool.submit(fn, arg).result()`."""

    def __init__(self, hub: GreenHub) -> None:
        self.hub = hub

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> GreenFuture:
        return GreenFuture(self.hub, self.hub.spawn(fn, arg))

    def __enter__(self) -> GreenPool:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class GreenHub(Hub):
    """One paho client for the whole fleet, driven by the scheduler's loop (see the module doc)."""

    turn = None  # one thread: nothing to take turns on

    def __init__(self, host: str, port: int, *, username: str | None = None, password: str | None = None,
                 client_id: str = "segel-sim-fleet", qos: int = 0) -> None:
        self.qos = qos
        self._boxes: dict[str, deque[bytes]] = {}
        self._waiting: dict[str, _Task] = {}  # device -> the wake waiting for its downlink
        self._deadlines: list[tuple[float, int, str, _Task]] = []
        self._seq = itertools.count()
        self._ready: deque[_Task] = deque()
        self._main = greenlet.getcurrent()
        self.published = 0
        self.downlinks = 0
        self._connected = False
        self.client = c = fleet_client(client_id, username, password, self._on_connect, self._on_message)
        c.connect(host, port, keepalive=60)
        deadline = time.monotonic() + 10
        while not self._connected and time.monotonic() < deadline:
            c.loop(0.1)
        if not self._connected:
            raise ConnectionError(f"the simulator could not connect to the MQTT broker at {host}:{port}")

    def pool(self, workers: int = 0) -> GreenPool:
        return GreenPool(self)

    # ---- paho callbacks (on the scheduler's thread) ---------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        client.subscribe(topics.TRACKER_DOWN.format(device="+"), qos=self.qos)
        self._connected = True

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        dev = msg.topic.rsplit("/", 1)[-1]
        self._boxes.setdefault(dev, deque()).append(bytes(msg.payload))
        self.downlinks += 1
        task = self._waiting.pop(dev, None)
        if task is not None:
            self._ready.append(task)

    # ---- the Hub interface (called from wakes, in their greenlets) ------------------------------

    def publish(self, device: str, frame: bytes) -> None:
        self.client.publish(topics.tracker_up(device), frame, qos=self.qos)
        self.published += 1

    def wait_down(self, device: str, timeout_s: float) -> bytes | None:
        q = self._boxes.setdefault(device, deque())
        if not q:
            me = greenlet.getcurrent()
            task = getattr(me, "task", None)
            if task is None or me is self._main:  # not in a wake (an attacker's event): nothing to wait for
                return None
            self._waiting[device] = task
            heapq.heappush(self._deadlines, (time.monotonic() + timeout_s, next(self._seq), device, task))
            self._main.switch()  # back to the scheduler until the downlink or the deadline
            if self._waiting.get(device) is task:
                del self._waiting[device]
        return q.popleft() if q else None

    def close(self) -> None:
        try:
            self.client.loop(0.05)
            self.client.disconnect()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    # ---- the scheduler (the runner's thread, the main greenlet) ----------------------------------

    def spawn(self, fn: Callable[[Any], Any], arg: Any) -> _Task:
        task = _Task()

        def run() -> None:
            try:
                task.value = fn(arg)
            except BaseException as e:  # noqa: BLE001 - handed to whoever asks for the result
                task.error = e
            task.done = True

        task.g = _Green(run, parent=self._main)
        task.g.task = task
        self._ready.append(task)
        return task

    def run_until(self, done: Callable[[], bool]) -> None:
        last_net = 0.0
        while not done():
            now = time.monotonic()
            while self._deadlines and (self._deadlines[0][0] <= now or self._deadlines[0][3].done):
                _at, _n, dev, task = heapq.heappop(self._deadlines)
                if self._waiting.get(dev) is task:  # no downlink in time: the wake goes on without it
                    del self._waiting[dev]
                    self._ready.append(task)
            if self._ready and now - last_net < NET_EVERY_S:
                task = self._ready.popleft()
                if not task.done:
                    task.g.switch()
                continue
            last_net = now
            wait = 0.0 if self._ready else min(0.05, max(0.0, self._deadlines[0][0] - now) if self._deadlines else 0.05)
            self.client.loop(wait)
