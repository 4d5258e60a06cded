"""Start real servers (Mosquitto, InfluxDB 1.x, VictoriaMetrics) on free loopback ports.

Used by the fixtures in tests/conftest.py and by tests that need to stop and restart a server
mid-stream (`Server.stop()` / `Server.start()` keep the same port and data directory).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from segel.ports import free_port


def wait_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}:\n{tail}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"{binary} is not installed: run `bash scripts/test.sh` (it installs the Debian packages)")
    return path


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    workdir: Path
    extra_ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> Server:
        if self.proc is not None and self.proc.poll() is None:
            return self
        fh = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT, cwd=self.workdir)
        fh.close()
        try:
            wait_port(self.port, proc=self.proc, log=self.log)
        except (RuntimeError, TimeoutError):
            self.stop(kill=True)  # never leave a half-started server for a later test to trip over
            raise
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    @property
    def url(self) -> str:
        scheme = "mqtt" if self.name == "mosquitto" else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


def mosquitto(workdir: Path, conf_extra: str = "", port: int | None = None) -> Server:
    """Mosquitto with persistence and no queue limit (QoS 1 must never be dropped in tests)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    if not conf_extra:
        conf_extra = "listener {port} 127.0.0.1\nallow_anonymous true\n"
    # Started as root, Mosquitto drops to the `mosquitto` user and then cannot write its database
    # in pytest's 0700 temporary folder: persistence would silently fail. `user root` keeps it as
    # the user that started it (Mosquitto ignores the option when not started as root).
    user = "" if "\nuser " in "\n" + conf_extra else "user root\n"
    conf.write_text(
        conf_extra.format(port=port)
        + user
        + f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n"
        + "max_queued_messages 0\nmax_inflight_messages 0\n"
        + "log_dest stdout\n"
    )
    return Server("mosquitto", [require("mosquitto"), "-c", str(conf)], port, workdir)


def influxdb(workdir: Path) -> Server:
    """InfluxDB 1.x (Debian's 1.6.7): the v1 /write and /query API."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, rpc = free_port(), free_port()
    conf = workdir / "influxdb.conf"
    conf.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
        f'[meta]\n  dir = "{workdir}/meta"\n'
        f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n  query-log-enabled = false\n'
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
        "[continuous_queries]\n  enabled = false\n"
    )
    return Server("influxdb", [require("influxd"), "-config", str(conf)], port, workdir, {"rpc": rpc})


def victoria(workdir: Path) -> Server:
    """VictoriaMetrics: accepts line protocol on /write and /api/v2/write (influxdb-client)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [require("victoria-metrics"), f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={workdir}/data",
            "-retentionPeriod=100y", "-search.latencyOffset=0s"]
    return Server("victoria-metrics", argv, port, workdir)


def influx_query(server: Server, q: str, db: str | None = None) -> dict:
    """Run InfluxQL against an InfluxDB 1.x server; returns the decoded JSON."""
    import json
    import urllib.parse

    params = {"q": q, "epoch": "ns"}
    if db:
        params["db"] = db
    req = urllib.request.Request(f"{server.url}/query", data=urllib.parse.urlencode(params).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def wait_http_ok(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
