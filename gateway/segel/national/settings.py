"""The national node's configuration (national.toml): the ingester and the national store.

Same rules as the gateway's config: the file, then `SEGEL_NATIONAL_<SECTION>_<KEY>` environment
variables; a bad value is reported with its key and where it came from; secrets never shown.
`segel deploy federation` writes one per national node. Reference: docs/national.md.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segel.config import ConfigError

SECRET_KEYS = {"ingest.password", "store.dsn"}


@dataclass
class IngestSection:
    name: str = "ingest-1"  # the MQTT client id (segel-<name>) and the name in ingest_status
    urls: list[str] = field(default_factory=lambda: ["mqtt://127.0.0.1:1883"])  # the national nodes, tried in turn
    username: str = "segel-ingest"
    password: str = ""
    ca_file: str = ""
    tls_insecure: bool = False
    partitions: list[str] = field(default_factory=lambda: ["segel/up/#"])  # topic filters this ingester takes
    batch_max: int = 500  # messages per transaction at most
    flush_s: float = 0.05  # a transaction at least this often while messages wait
    keepalive_s: int = 30
    reconnect_max_s: float = 10.0
    status_interval_s: float = 5.0


@dataclass
class StoreSection:
    dsn: str = "postgresql://segel@127.0.0.1:5432/segel"


@dataclass
class NationalConfig:
    ingest: IngestSection = field(default_factory=IngestSection)
    store: StoreSection = field(default_factory=StoreSection)
    source: str = "defaults"

    def redacted(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for sec in SECTIONS:
            out[sec] = {f.name: ("***" if f"{sec}.{f.name}" in SECRET_KEYS and getattr(getattr(self, sec), f.name)
                                 else getattr(getattr(self, sec), f.name))
                        for f in dataclasses.fields(getattr(self, sec))}
        return out


SECTIONS = ("ingest", "store")


def _set(cfg: NationalConfig, key: str, value: Any, source: str) -> None:
    sec, _, name = key.partition(".")
    if sec not in SECTIONS:
        raise ConfigError(key, f"unknown section [{sec}] (known: {', '.join(SECTIONS)})", source)
    obj = getattr(cfg, sec)
    fields = {f.name for f in dataclasses.fields(obj)}
    if name not in fields:
        raise ConfigError(key, f"unknown setting (known in [{sec}]: {', '.join(sorted(fields))})", source)
    kind = type(getattr(type(obj)(), name))
    if kind is list:
        v = [x.strip() for x in value.split(",") if x.strip()] if isinstance(value, str) else value
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(key, f"expected a list of strings, got {value!r}", source)
    elif isinstance(value, str) and kind in (int, float, bool):
        try:
            v = (value.strip().lower() in ("1", "true", "yes", "on")) if kind is bool else kind(value)
        except ValueError:
            raise ConfigError(key, f"expected {kind.__name__}, got {value!r}", source) from None
    elif kind is float and isinstance(value, int) and not isinstance(value, bool):
        v = float(value)
    elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(key, f"expected {kind.__name__}, got {type(value).__name__} {value!r}", source)
    else:
        v = value
    if kind in (int, float) and v <= 0:
        raise ConfigError(key, f"must be positive, got {v}", source)
    setattr(obj, name, v)


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> NationalConfig:
    cfg = NationalConfig()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config", f"file {p} not found", str(p)) from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("config", f"not valid TOML: {e}", str(p)) from None
        cfg.source = str(p)
        for sec, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(sec, f"expected a [{sec}] table", str(p))
            for name, value in table.items():
                _set(cfg, f"{sec}.{name}", value, str(p))
    env = os.environ if env is None else env
    for sec in SECTIONS:
        for f in dataclasses.fields(getattr(cfg, sec)):
            var = f"SEGEL_NATIONAL_{sec.upper()}_{f.name.upper()}"
            if var in env:
                _set(cfg, f"{sec}.{f.name}", env[var], f"environment {var}")
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(cfg, key, value, "command line")
    if not cfg.ingest.urls:
        raise ConfigError("ingest.urls", "no national node given", cfg.source)
    return cfg
