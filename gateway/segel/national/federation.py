"""`segel deploy federation`: every file of a national deployment, from one spec of regencies and nodes.

The spec (TOML) names the national nodes and the regencies (inline or a CSV of code,name,host):

    [national]
    nodes = [{name = "nasional-1", host = "10.20.0.11"}, {name = "nasional-2", host = "10.20.0.12"},
             {name = "nasional-3", host = "10.20.0.13"}]
    store_dsn = "postgresql://segel@10.20.0.20:5432/segel"
    regencies = "regencies.csv"        # or [[regency]] tables below

    [[regency]]
    code = "64.08"
    name = "Kutai Timur"
    host = "gw.kutim.example"          # the regency gateway's host (for the README only)

Written under OUT: `national/<node>/nats-server.conf` (cluster routes, JetStream, the MQTT
listener, one account with a user per regency allowed to publish only `segel/up/<pp>/<pppp>` and
read only its receipts, and the ingester's user), `national/<node>/ingest-<k>.toml` (the ingesters: `ingesters` partitions of the provinces),
`national/systemd/*.service`, `national/postgres-setup.sql`, `regency/<code>/national.toml` (the
`[national]` section of that regency's gateway), `credentials.json` (every password, kept and
reused on the next run; mode 600) and `README.md` (what goes where). NATS gets bcrypt hashes only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from segel.national import codes

INGEST_USER = "segel-ingest"


class FederationError(ValueError):
    pass


@dataclass(frozen=True)
class Node:
    name: str
    host: str
    client_port: int = 4222
    cluster_port: int = 6222
    mqtt_port: int = 8883
    monitor_port: int = 8222
    listen: str = "0.0.0.0"  # where the MQTT listener binds


@dataclass(frozen=True)
class Regency:
    code: str
    name: str
    host: str = ""


@dataclass
class Spec:
    nodes: list[Node]
    regencies: list[Regency]
    store_dsn: str = "postgresql://segel@127.0.0.1:5432/segel"
    tls: bool = True  # the MQTT listener speaks TLS with /etc/segel/national/tls/<node>.{crt,key}
    tls_dir: str = "/etc/segel/national/tls"
    data_dir: str = "/var/lib/segel/nats"
    conf_dir: str = "/etc/segel/national"
    max_file_store: str = "200G"
    ack_wait: str = "30s"
    max_ack_pending: int = 4096
    cluster_name: str = "segel-national"
    ingesters: int = 1  # ingester partitions: the provinces split between this many ingesters
    source: str = ""


def _node(d: dict, i: int, where: str) -> Node:
    if not isinstance(d, dict) or not d.get("name") or not d.get("host"):
        raise FederationError(f"{where}: national.nodes[{i}] needs a name and a host")
    kw = {k: d[k] for k in ("client_port", "cluster_port", "mqtt_port", "monitor_port", "listen") if k in d}
    unknown = set(d) - {"name", "host", *kw}
    if unknown:
        raise FederationError(f"{where}: national.nodes[{i}]: unknown key(s) {', '.join(sorted(unknown))}")
    return Node(str(d["name"]), str(d["host"]), **kw)


def parse_regencies_csv(text: str, name: str) -> list[Regency]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "code" not in [c.strip() for c in reader.fieldnames]:
        raise FederationError(f"{name}:1: the header must name code (and name, host)")
    out, errors = [], []
    for row in reader:
        r = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        try:
            out.append(Regency(codes.parse(r.get("code", "")), r.get("name", ""), r.get("host", "")))
        except codes.CodeError as e:
            errors.append(f"{name}:{reader.line_num}: field code: {e}")
    if errors:
        raise FederationError("\n".join(errors))
    return out


def load_spec(path: str | Path) -> Spec:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FederationError(f"{p}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise FederationError(f"{p}: not valid TOML: {e}") from None
    nat = data.get("national")
    if not isinstance(nat, dict):
        raise FederationError(f"{p}: a [national] table with nodes is needed")
    nodes = [_node(d, i, str(p)) for i, d in enumerate(nat.get("nodes") or [])]
    if not nodes:
        raise FederationError(f"{p}: national.nodes is empty (three nodes make a cluster that survives one's loss)")
    if len({n.name for n in nodes}) != len(nodes):
        raise FederationError(f"{p}: national.nodes: two nodes share a name")
    regs: list[Regency] = []
    if isinstance(nat.get("regencies"), str):
        rp = (p.parent / nat["regencies"]) if not Path(nat["regencies"]).is_absolute() else Path(nat["regencies"])
        try:
            regs += parse_regencies_csv(rp.read_text(encoding="utf-8-sig"), rp.name)
        except FileNotFoundError:
            raise FederationError(f"{p}: national.regencies: {rp} not found") from None
    for i, r in enumerate(data.get("regency") or []):
        try:
            regs.append(Regency(codes.parse(str(r.get("code", ""))), str(r.get("name", "")), str(r.get("host", ""))))
        except codes.CodeError as e:
            raise FederationError(f"{p}: regency[{i}].code: {e}") from None
    if not regs:
        raise FederationError(f"{p}: no regency listed ([[regency]] tables or national.regencies = \"file.csv\")")
    seen: set[str] = set()
    for r in regs:
        if r.code in seen:
            raise FederationError(f"{p}: regency {r.code} is listed twice")
        seen.add(r.code)
    known = {"nodes", "regencies", "store_dsn", "tls", "tls_dir", "data_dir", "conf_dir", "max_file_store",
             "ack_wait", "max_ack_pending", "cluster_name", "ingesters"}
    unknown = set(nat) - known
    if unknown:
        raise FederationError(f"{p}: national: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    extra = {k: nat[k] for k in known - {"nodes", "regencies"} if k in nat}
    return Spec(nodes, regs, source=str(p), **extra)


# ---- credentials ----------------------------------------------------------------------------------


@dataclass
class Credentials:
    """Passwords by account, and their bcrypt hashes (kept so a re-run does not hash 514 again)."""

    passwords: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        if not path.exists():
            return cls()
        d = json.loads(path.read_text())
        return cls(dict(d.get("passwords", {})), dict(d.get("bcrypt", {})))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"passwords": self.passwords, "bcrypt": self.hashes}, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)

    def ensure(self, account: str, rotate: bool, cost: int) -> str:
        if rotate or account not in self.passwords:
            self.passwords[account] = secrets.token_urlsafe(24)
            self.hashes.pop(account, None)
        pw = self.passwords[account]
        h = self.hashes.get(account)
        if h is None or not bcrypt.checkpw(pw.encode(), h.encode()):
            self.hashes[account] = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(cost)).decode()
        return pw


# ---- the files ------------------------------------------------------------------------------------


def nats_conf(spec: Spec, node: Node, creds: Credentials, store_dir: str | None = None) -> str:
    """nats-server.conf for one node: routes to every node, JetStream, MQTT, accounts."""
    routes = ", ".join(f'"nats-route://{n.host}:{n.cluster_port}"' for n in spec.nodes)
    users = [f'      {{user: "{INGEST_USER}", password: "{creds.hashes[INGEST_USER]}", permissions: {{'
             f'publish: {{allow: ["segel.receipt.>"]}}, subscribe: {{allow: ["segel.up", "segel.up.>", "$MQTT.sub.>"]}}}}}}']
    for r in spec.regencies:
        u = codes.user(r.code)
        up = codes.subject(codes.up_topic(r.code))
        rc = codes.subject(codes.receipt_topic(r.code))
        users.append(f'      {{user: "{u}", password: "{creds.hashes[u]}", permissions: {{'
                     f'publish: {{allow: ["{up}"]}}, subscribe: {{allow: ["{rc}"]}}}}}}  # {r.name or r.code}')
    tls = (f'\n  tls {{\n    cert_file: "{spec.tls_dir}/{node.name}.crt"\n    key_file: "{spec.tls_dir}/{node.name}.key"\n  }}'
           if spec.tls else "")
    cluster_replicas = min(3, len(spec.nodes))
    cluster = (f"""
cluster {{
  name: "{spec.cluster_name}"
  listen: "{node.host}:{node.cluster_port}"
  routes: [{routes}]
}}
""" if len(spec.nodes) > 1 else "")
    return f"""# nats-server.conf for {node.name}: written by `segel deploy federation` (docs/national.md)
server_name: "{node.name}"
listen: "127.0.0.1:{node.client_port}"
http: "127.0.0.1:{node.monitor_port}"
max_payload: 1MB
# a consumer busy with a large batch is not cut off at once (the default is 10 s)
write_deadline: "30s"

jetstream {{
  store_dir: "{store_dir or spec.data_dir}"
  max_file_store: {spec.max_file_store}
  max_memory_store: 256MB
}}
{cluster}
# The regencies and the ingesters speak MQTT 3.1.1. A QoS 1 message is stored in the
# replicated $MQTT_msgs stream before its PUBACK; unacknowledged deliveries come again after ack_wait.
mqtt {{
  listen: "{node.listen}:{node.mqtt_port}"
  stream_replicas: {cluster_replicas}
  ack_wait: "{spec.ack_wait}"
  max_ack_pending: {spec.max_ack_pending}{tls}
}}

accounts {{
  SEGEL {{
    jetstream: enabled
    users: [
{chr(10).join(users)}
    ]
  }}
}}
"""


def partitions(spec: Spec) -> list[list[str]]:
    """The provinces of the listed regencies split into `spec.ingesters` groups of about equal
    numbers of regencies (largest first), as MQTT topic filters."""
    per: dict[str, int] = {}
    for r in spec.regencies:
        per[codes.province(r.code)] = per.get(codes.province(r.code), 0) + 1
    groups: list[list[str]] = [[] for _ in range(max(1, spec.ingesters))]
    load = [0] * len(groups)
    for prov, n in sorted(per.items(), key=lambda kv: (-kv[1], kv[0])):
        i = load.index(min(load))
        groups[i].append(f"{codes.UP_PREFIX}/{prov}/+")
        load[i] += n
    return [sorted(g) for g in groups if g] if spec.ingesters > 1 else [[codes.UP_ALL]]


def national_toml(spec: Spec, node: Node, creds: Credentials, ingest_name: str = "ingest-1",
                  topics: list[str] | None = None) -> str:
    scheme = "mqtts" if spec.tls else "mqtt"
    # this node first: the ingester prefers its own node and moves on when it is gone
    order = [node] + [n for n in spec.nodes if n is not node]
    urls = ", ".join(f'"{scheme}://{n.host}:{n.mqtt_port}"' for n in order)
    ca = f'\nca_file = "{spec.tls_dir}/ca.crt"' if spec.tls else ""
    return f"""# The national ingester on {node.name}: written by `segel deploy federation` (docs/national.md).
# Every node runs an ingester of this name; one holds the store's lock and works, the others wait.
# `systemctl enable --now segel-national-ingest@{ingest_name}` runs it from {spec.conf_dir}/{ingest_name}.toml.
[ingest]
name = "{ingest_name}"
urls = [{urls}]
username = "{INGEST_USER}"
password = "{creds.passwords[INGEST_USER]}"{ca}
partitions = {json.dumps(topics or [codes.UP_ALL])}

[store]
dsn = "{spec.store_dsn}"
"""


def regency_toml(spec: Spec, r: Regency, creds: Credentials) -> str:
    scheme = "mqtts" if spec.tls else "mqtt"
    urls = ", ".join(f'"{scheme}://{n.host}:{n.mqtt_port}"' for n in spec.nodes)
    ca = f'\nca_file = "{spec.conf_dir}/national-ca.crt"' if spec.tls else ""
    return f"""# The [national] section of regency {r.code} ({r.name or '-'})'s segel.toml: written by
# `segel deploy federation` (docs/national.md). Append it to the gateway's config and restart it.
[national]
regency = "{r.code}"
name = "{r.name}"
urls = [{urls}]
username = "{codes.user(r.code)}"
password = "{creds.passwords[codes.user(r.code)]}"{ca}
"""


UNIT_NATS = """[Unit]
Description=Segel national message layer (NATS with JetStream and MQTT)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/nats-server -c {conf_dir}/nats-server.conf
ExecReload=/bin/kill -HUP $MAINPID
User=nats
Restart=on-failure
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""

UNIT_INGEST = """[Unit]
Description=Segel national ingester %i (regency items into PostgreSQL)
After=network-online.target segel-nats.service
Wants=network-online.target

[Service]
ExecStart=/usr/local/bin/segel national ingest --config {conf_dir}/%i.toml
User=segel
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

POSTGRES_SQL = """-- The national store: run once on the PostgreSQL host (psql -f postgres-setup.sql as postgres).
-- The ingesters create the tables themselves on first start.
CREATE ROLE segel LOGIN PASSWORD '{password}';
CREATE DATABASE segel OWNER segel;
-- read-only role for the national view and oversight
CREATE ROLE segel_view LOGIN PASSWORD '{view_password}';
GRANT CONNECT ON DATABASE segel TO segel_view;
\\c segel
ALTER DEFAULT PRIVILEGES FOR ROLE segel IN SCHEMA public GRANT SELECT ON TABLES TO segel_view;
"""


@dataclass
class Written:
    files: list[Path]
    accounts: int


def write(spec: Spec, out: Path, rotate: tuple[str, ...] = (), cost: int = 10,
          progress: Callable[[int, int], None] | None = None) -> Written:
    out.mkdir(parents=True, exist_ok=True)
    creds_path = out / "credentials.json"
    creds = Credentials.load(creds_path)
    rot = set(rotate)
    accounts = [INGEST_USER] + [codes.user(r.code) for r in spec.regencies]
    unknown = rot - set(accounts) - {r.code for r in spec.regencies} - {"postgres", "postgres-view"}
    if unknown:
        raise FederationError(f"--rotate: no account {', '.join(sorted(unknown))} (accounts: {INGEST_USER}, "
                              f"regency codes, postgres, postgres-view)")
    for i, a in enumerate(accounts):
        code = codes.from_token(a.split("-")[1]) if a.startswith("regency-") else None
        creds.ensure(a, a in rot or (code is not None and code in rot), cost)
        if progress:
            progress(i + 1, len(accounts))
    pg = creds.ensure("postgres", "postgres" in rot, cost)
    pg_view = creds.ensure("postgres-view", "postgres-view" in rot, cost)
    creds.save(creds_path)
    files: list[Path] = [creds_path]

    def put(rel: str, text: str, private: bool = False) -> None:
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if private:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.chmod(p, 0o600)
        else:
            p.write_text(text)
        files.append(p)

    for n in spec.nodes:
        put(f"national/{n.name}/nats-server.conf", nats_conf(spec, n, creds), private=True)
        for k, topics in enumerate(partitions(spec), start=1):
            put(f"national/{n.name}/ingest-{k}.toml", national_toml(spec, n, creds, f"ingest-{k}", topics), private=True)
    put("national/systemd/segel-nats.service", UNIT_NATS.format(conf_dir=spec.conf_dir))
    put("national/systemd/segel-national-ingest@.service", UNIT_INGEST.format(conf_dir=spec.conf_dir))
    put("national/postgres-setup.sql", POSTGRES_SQL.format(password=pg, view_password=pg_view), private=True)
    for r in spec.regencies:
        put(f"regency/{codes.token(r.code)}/national.toml", regency_toml(spec, r, creds), private=True)
    put("README.md", readme(spec))
    return Written(files, len(accounts))


def readme(spec: Spec) -> str:
    nodes = "\n".join(f"- `national/{n.name}/` → {n.host}: `{spec.conf_dir}/nats-server.conf`, "
                      f"`{spec.conf_dir}/ingest-*.toml`" for n in spec.nodes)
    return f"""# Segel national deployment ({len(spec.nodes)} nodes, {len(spec.regencies)} regencies)

Written by `segel deploy federation`; see docs/national.md for the why and the faults.

## National nodes
{nodes}
- every node: `apt-get install nats-server`, then copy `national/systemd/*.service` to
  `/etc/systemd/system/`, put the node's TLS certificate and key in `{spec.tls_dir}/`, and
  `systemctl enable --now segel-nats segel-national-ingest@ingest-1` (and `@ingest-2` ... for each
  ingester partition: each takes some provinces; every node runs all of them, one of each works).
- the PostgreSQL host: `psql -f national/postgres-setup.sql` as postgres, once.

## Regency gateways
Each `regency/<code>/national.toml` is the `[national]` section of that regency's `segel.toml`:
append it, copy the national CA certificate next to it, and restart `segel gateway`. The regency
can publish only under its own code; anything else is refused and logged by the national nodes.

## Adding a regency
Add it to the spec, run `segel deploy federation` again (passwords already issued are kept),
copy the new `nats-server.conf` to every node and reload (`systemctl reload segel-nats`), then
configure the new regency's gateway with its `regency/<code>/national.toml`.

`credentials.json` holds every password: keep it private.
"""
