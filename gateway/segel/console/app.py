"""The console's Starlette app: `create_app(config)` with its own pages and any extra `Router`s.

Routers come from three places, in this order: the console's own (sign-in, map, alerts, boxes,
fleet, live events, tiles), the `routers` argument, and the entry points of the group
`segel.console` (`[project.entry-points."segel.console"] receipts = "pkg.module:router"`), so a
package adds pages without the console importing it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from segel import accounts, i18n, store
from segel.config import Config
from segel.console.routing import Router
from segel.console.web import STATIC, Web

log = logging.getLogger("segel.console")
ENTRY_POINT_GROUP = "segel.console"
HERE = Path(__file__).parent
WORKER_THREADS = 8  # threads for database reads and page rendering (see the lifespan)


class ConsoleState:
    """What every request shares: configuration, clock, templates, database connections per thread."""

    def __init__(self, cfg: Config, routers: list[Router], clock: Callable[[], float] | None = None,
                 db_path: Path | None = None) -> None:
        self.cfg = cfg
        self.db_path = db_path or cfg.path(cfg.gateway.db)
        self.clock: Callable[[], float] = clock or time.time
        self.tz = i18n.zone(cfg.locale.timezone)
        self.language = i18n.language(cfg.locale.language)
        self.title = cfg.gateway.instance
        self.routers = routers
        dirs = [HERE / "templates"] + [r.templates for r in routers if r.templates is not None]
        self.web = Web(dirs, [n for r in routers for n in r.nav_items])
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self.session_ttl_s = cfg.console.session_hours * 3600
        self.extras: dict[str, Any] = {}  # for routers: caches, clients (keyed by router name)
        self.closers: list[Callable[[], Any]] = []  # run when the console stops (open files)
        tiles = cfg.console.tiles_url
        tile_src = ""
        if tiles.startswith(("http://", "https://")):
            from urllib.parse import urlsplit

            u = urlsplit(tiles.replace("{s}", "a"))
            tile_src = f" {u.scheme}://{u.netloc.replace('a.', '*.', 1) if '{s}' in tiles else u.netloc}"
        self.csp = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                    f"img-src 'self' data:{tile_src}; connect-src 'self'; frame-ancestors 'none'; "
                    "form-action 'self'; base-uri 'none'")
        with store.connect(self.db_path) as conn:  # create the tables before the first request
            accounts.ensure_schema(conn)

    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = store.connect(self.db_path)
            accounts.ensure_schema(conn)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def session_of(self, token: str) -> accounts.Session | None:
        return accounts.session(self.db(), token, self.session_ttl_s)

    def close(self) -> None:
        for fn in self.closers:
            with contextlib.suppress(Exception):
                fn()
        self.closers.clear()
        with self._conns_lock:
            for c in self._conns:
                with contextlib.suppress(sqlite3.Error):
                    c.close()
            self._conns.clear()


def discover_routers() -> list[Router]:
    """Routers other installed packages offer under the `segel.console` entry-point group."""
    out: list[Router] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            r = ep.load()
        except Exception:  # noqa: BLE001 - one broken add-on must not stop the console
            log.exception("console: cannot load pages %s (%s)", ep.name, ep.value)
            continue
        if isinstance(r, Router):
            out.append(r)
        else:
            log.error("console: entry point %s is a %s, not a segel.console.Router", ep.name, type(r).__name__)
    return out


def core_routers() -> list[Router]:
    from segel.console.pages import alerts, auth, boxes, fleet, map

    return [auth.router, map.router, alerts.router, boxes.router, fleet.router]


def create_app(cfg: Config, routers: Iterable[Router] = (), *, clock: Callable[[], float] | None = None,
               discover: bool = True, hooks: Iterable[Callable[[ConsoleState], Any]] = (),
               regency_pages: bool = True) -> Starlette:
    """The console for the gateway database `cfg` names. `clock`: the time pages call "now"
    (the demo passes its simulated clock). `hooks`: called with the state at start-up; what they
    return is started (`await x.start()`) and stopped with the app (the live feed is one).
    `regency_pages=False`: sign-in and `routers` only, without one regency's map, alerts, boxes
    and fleet (`segel national view`, whose database holds only the accounts)."""
    from segel.console.pages import auth

    core = core_routers() if regency_pages else [auth.router]
    all_routers = core + list(routers) + (discover_routers() if discover else [])
    state = ConsoleState(cfg, all_routers, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # every worker thread holds its own database connection and page cache: a few threads
        # serve a command post (Starlette's default is 40, each a connection of up to 2 MB)
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        stops = [h(state) for h in hooks]
        for s in stops:
            if hasattr(s, "start"):
                await s.start()
        try:
            yield
        finally:
            for s in stops:
                if hasattr(s, "stop"):
                    await s.stop()
            state.close()

    routes: list[Any] = [r for rt in all_routers for r in rt.routes]
    for rt in all_routers:  # before /static, which would take their paths
        if rt.static is not None:
            routes.append(Mount(f"/static/{rt.name}", app=StaticFiles(directory=str(rt.static)), name=f"static.{rt.name}"))
    routes.append(Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.console = state
    return app
