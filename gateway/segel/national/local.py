"""A national tier on this machine's loopback: a NATS cluster and a PostgreSQL, as plain processes.

For trials, the tests and `segel bench national`: the same files `segel deploy federation`
writes for production (nats-server.conf per node, bcrypt-hashed accounts), with every node on
127.0.0.1 and its own free ports, no TLS; PostgreSQL from Debian's packages in a fresh data
folder (run as the `postgres` user when started as root, which PostgreSQL refuses to run as).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from segel.national import federation as fed
from segel.ports import address_in_use, free_port


class LocalError(RuntimeError):
    pass


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalError(f"{proc.args[0]} exited with {proc.returncode} before listening on {port}:\n"
                             + (log.read_text(errors="replace")[-2000:] if log.exists() else ""))
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise LocalError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s (see {log})")


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise LocalError(f"{binary} is not installed: apt-get install {package} (scripts/setup.sh --test does it)")
    return path


@dataclass
class Proc:
    name: str
    argv: list[str]
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    cwd: Path | None = None
    user: str | None = None  # run as this user (root starting PostgreSQL)

    def start(self, timeout: float = 20.0) -> Proc:
        if self.proc is not None and self.proc.poll() is None:
            return self
        fh = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        argv = (["runuser", "-u", self.user, "--"] + self.argv) if self.user else self.argv
        self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=self.cwd, start_new_session=True)
        fh.close()
        try:
            wait_port(self.port, self.proc, self.log, timeout)
        except LocalError:
            self.stop()  # never leave a half-started server behind
            raise
        return self

    def kill(self) -> None:
        """SIGKILL: the node dies mid-stream, as in a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _loopback_nodes(n: int) -> list[fed.Node]:
    return [fed.Node(f"n{i + 1}", "127.0.0.1", client_port=free_port(), cluster_port=free_port(),
                     mqtt_port=free_port(), monitor_port=free_port(), listen="127.0.0.1") for i in range(n)]


@dataclass
class NatsCluster:
    """`n` nats-server nodes on loopback, configured by segel.national.federation."""

    workdir: Path
    spec: fed.Spec
    creds: fed.Credentials
    nodes: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, workdir: Path, regencies: list[fed.Regency], n: int = 3, cost: int = 4,
               max_ack_pending: int = 4096, ack_wait: str = "5s", tls_dir: Path | None = None) -> NatsCluster:
        """tls_dir: a folder with <node>.crt and <node>.key for each node (n1, n2, ...): the MQTT
        listeners speak TLS, as in production."""
        need("nats-server", "nats-server")
        workdir.mkdir(parents=True, exist_ok=True)
        spec = fed.Spec(_loopback_nodes(n), regencies, tls=tls_dir is not None, tls_dir=str(tls_dir or ""),
                        ack_wait=ack_wait, max_file_store="4G", max_ack_pending=max_ack_pending)
        creds = fed.Credentials()
        for a in [fed.INGEST_USER] + [fed.codes.user(r.code) for r in regencies]:
            creds.ensure(a, False, cost)
        c = cls(workdir, spec, creds)
        c._configure()
        return c

    def _configure(self) -> None:
        """Write each node's nats-server.conf for the ports in the spec."""
        self.nodes = []
        for node in self.spec.nodes:
            d = self.workdir / node.name
            d.mkdir(exist_ok=True)
            conf = d / "nats-server.conf"
            conf.write_text(fed.nats_conf(self.spec, node, self.creds, store_dir=str(d / "js")))
            self.nodes.append(Proc(node.name, [need("nats-server", "nats-server"), "-c", str(conf)], node.mqtt_port,
                                   d / "nats.log", cwd=d))

    def start(self, tries: int = 3) -> NatsCluster:
        """Start every node and wait for a JetStream leader. A node whose port was taken in the
        meantime (another program's) makes the whole cluster start again on new ports."""
        for attempt in range(tries):
            for p in self.nodes:  # routes are retried, so each node can start before the others listen
                fh = open(p.log, "ab")  # noqa: SIM115
                p.proc = subprocess.Popen(p.argv, stdout=fh, stderr=subprocess.STDOUT, cwd=p.cwd,
                                          start_new_session=True)
                fh.close()
            try:
                for p in self.nodes:
                    assert p.proc is not None
                    wait_port(p.port, p.proc, p.log)
                self.wait_ready()
                return self
            except LocalError as e:
                self.stop()
                if attempt + 1 == tries or not address_in_use(str(e)):
                    raise
                for p in self.nodes:  # the next try's log starts clean
                    p.log.unlink(missing_ok=True)
                self.spec.nodes = _loopback_nodes(len(self.spec.nodes))
                self._configure()
        raise AssertionError("unreachable")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the JetStream meta group has a leader (MQTT sessions need it)."""
        import json
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node, p in zip(self.spec.nodes, self.nodes):
                if not p.alive:
                    continue
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{node.monitor_port}/jsz", timeout=2) as r:
                        jsz = json.loads(r.read())
                    if len(self.nodes) == 1 or jsz.get("meta_cluster", {}).get("leader"):
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise LocalError("the NATS cluster elected no JetStream leader (see the nodes' nats.log)")

    def urls(self, user: str, password: str) -> list[str]:
        from urllib.parse import quote

        scheme = "mqtts" if self.spec.tls else "mqtt"
        return [f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{n.mqtt_port}"
                for n in self.spec.nodes]

    def password(self, account: str) -> str:
        return self.creds.passwords[account]

    def stop(self) -> None:
        for p in self.nodes:
            p.stop()


def _pg_bin(name: str) -> str:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return need(name, "postgresql")


@dataclass
class Postgres:
    """A throw-away PostgreSQL on a free loopback port: database `segel`, user `segel`, trust auth."""

    workdir: Path
    port: int = 0
    proc: Proc | None = None
    _own_tmp: bool = False

    @classmethod
    def create(cls, workdir: Path | None = None) -> Postgres:
        root = os.geteuid() == 0
        if workdir is None or root:
            # as root the data folder must belong to `postgres`, and pytest's folders are 0700 root's
            workdir = Path(tempfile.mkdtemp(prefix="segel-pg-"))
            own = True
        else:
            workdir.mkdir(parents=True, exist_ok=True)
            own = False
        user = "postgres" if root else None
        if root:
            shutil.chown(workdir, "postgres", "postgres")
        data = workdir / "data"
        initdb = _pg_bin("initdb")
        argv = [initdb, "-D", str(data), "-U", "segel", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"]
        r = subprocess.run((["runuser", "-u", user, "--"] if user else []) + argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise LocalError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        port = free_port()
        pg = cls(workdir, port, _own_tmp=own)
        pg.proc = Proc("postgres", [_pg_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir),
                                    "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=60",
                                    "-c", "shared_buffers=128MB", "-c", "log_min_messages=warning"],
                       port, workdir / "postgres.log", cwd=workdir, user=user)
        return pg

    def start(self, tries: int = 3) -> Postgres:
        assert self.proc is not None
        for attempt in range(tries):
            try:
                self.proc.start(30)
                break
            except LocalError as e:  # the port was taken since it was picked: pick another
                if attempt + 1 == tries or not address_in_use(str(e)):
                    raise
                self.port = free_port()
                self.proc.argv[self.proc.argv.index("-p") + 1] = str(self.port)
                self.proc.port = self.port
        import psycopg

        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(f"postgresql://segel@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
                    if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'segel'").fetchone():
                        c.execute("CREATE DATABASE segel")
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def dsn(self) -> str:
        return f"postgresql://segel@127.0.0.1:{self.port}/segel"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        if self._own_tmp:
            shutil.rmtree(self.workdir, ignore_errors=True)
