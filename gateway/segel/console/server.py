"""Serving the console: in the foreground (`segel console`) or in a thread beside the gateway or the demo.

uvicorn runs the Starlette app; behind a reverse proxy (deploy/console) it trusts the proxy's
X-Forwarded-For/-Proto only from `console.trusted_proxies`, so secure cookies and client
addresses (login limits) are right.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import uvicorn

from segel.config import Config
from segel.console.app import create_app
from segel.console.routing import Router

log = logging.getLogger("segel.console")


def uvicorn_config(cfg: Config, app: Any, port: int | None = None, host: str | None = None) -> uvicorn.Config:
    return uvicorn.Config(app, host=host or cfg.console.host, port=cfg.console.port if port is None else port,
                          log_level="warning",
                          proxy_headers=True, forwarded_allow_ips=",".join(cfg.console.trusted_proxies) or None,
                          access_log=False, lifespan="on", timeout_graceful_shutdown=2)


class ConsoleServer:
    """`ConsoleServer(cfg).start()` serves in a background thread; `.url`; `.stop()`."""

    def __init__(self, cfg: Config, routers: Iterable[Router] = (), *, clock: Callable[[], float] | None = None,
                 port: int | None = None, host: str | None = None, hooks: Iterable[Callable[[Any], Any]] = (),
                 regency_pages: bool = True) -> None:
        self.cfg = cfg
        self.app = create_app(cfg, routers, clock=clock, hooks=hooks, regency_pages=regency_pages)
        self.host = host or cfg.console.host
        self.port = port if port is not None else cfg.console.port
        self.server = uvicorn.Server(uvicorn_config(cfg, self.app, self.port, self.host))
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 20.0) -> ConsoleServer:
        self.thread = threading.Thread(target=self.server.run, name="segel-console", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the console could not listen on {self.host}:{self.port} (port in use?)")
            time.sleep(0.05)
        if not self.port:  # port 0: the system chose one (no race with other sockets)
            self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        log.info("console on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)


def serve_forever(cfg: Config, routers: Iterable[Router] = (), port: int | None = None, host: str | None = None,
                  hooks: Iterable[Callable[[Any], Any]] = ()) -> None:
    """`segel console`: serve in this thread until Ctrl-C / SIGTERM."""
    app = create_app(cfg, routers, hooks=hooks)
    uvicorn.Server(uvicorn_config(cfg, app, port, host)).run()
