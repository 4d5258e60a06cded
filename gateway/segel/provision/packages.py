"""The local micropython-lib package cache, in the package index's own layout.

mip (micropython-lib `micropython/mip/mip/__init__.py`) reads a package as
`{index}/package/{mpy}/{name}/{version}.json` — `{"hashes": [[path, short_sha256], ...],
"deps": [[name, version], ...], "version": ...}` — and each file from
`{index}/file/{hash[:2]}/{hash}`, where `mpy` is the .mpy major version ("6") or "py" for source.
`fetch()` copies packages and their dependencies from an index into a folder with exactly that
layout, so the cache is itself a valid index (`mpremote mip install --index file-path` style) and
technicians can build images offline. Every file is checked against its hash on the way in and
again when an image takes it.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the micropython-lib packages a board's radio needs (hardware-radio.md §3: lora + sync + a driver)
RADIO_PACKAGES = {"sx1276": "lora-sx127x", "sx1262": "lora-sx126x"}
BASE_PACKAGES = ("lora", "lora-sync")


class PackageError(RuntimeError):
    """A package missing from the cache, a bad hash, or an index that cannot be read."""


def board_packages(board: dict[str, Any]) -> list[str]:
    chip = board.get("radio", {}).get("chip")
    if chip not in RADIO_PACKAGES:
        raise PackageError(f"board {board.get('id')!r}: no LoRa driver package for radio chip {chip!r}")
    return [*BASE_PACKAGES, RADIO_PACKAGES[chip]]


def mpy_dir(mpy_major: int | None) -> str:
    return "py" if mpy_major is None else str(mpy_major)


def _package_rel(name: str, mpy: str, version: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise PackageError(f"{name!r} is not a package name")
    return f"package/{mpy}/{name}/{version}.json"


def _file_rel(short_hash: str) -> str:
    if len(short_hash) < 8 or any(c not in "0123456789abcdef" for c in short_hash):
        raise PackageError(f"bad file hash {short_hash!r} in package metadata")
    return f"file/{short_hash[:2]}/{short_hash}"


def _check_hash(data: bytes, short_hash: str, what: str) -> None:
    if hashlib.sha256(data).hexdigest()[: len(short_hash)] != short_hash:
        raise PackageError(f"{what}: content does not match its hash {short_hash} (corrupt download or cache)")


def _http_get(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (index URL from settings)
            data: bytes = resp.read()
            return data
    except urllib.error.HTTPError as e:
        raise PackageError(f"{url}: HTTP {e.code} (no such package or version in this index?)") from e
    except (urllib.error.URLError, OSError) as e:
        raise PackageError(f"cannot reach the package index ({url}): {getattr(e, 'reason', e)}; "
                           "fetch packages while online, or copy a filled cache folder here") from e


@dataclass
class FetchReport:
    packages: list[str]
    files_downloaded: int
    files_cached: int
    bytes_downloaded: int


def fetch(index: str, names: list[str], cache: Path, mpy_major: int | None = 6, version: str = "latest",
          timeout: float = 30.0, on_file: Callable[[str], None] | None = None) -> FetchReport:
    """Fill `cache` from the index at `index` (http(s):// or file://) with `names` and their deps."""
    index = index.rstrip("/")
    mpy = mpy_dir(mpy_major)
    report = FetchReport([], 0, 0, 0)
    todo: list[tuple[str, str]] = [(n, version) for n in names]
    done: set[str] = set()
    while todo:
        name, ver = todo.pop(0)
        if name in done:
            continue
        if name.startswith(("http://", "https://", "github:", "gitlab:")):
            raise PackageError(f"dependency {name} is a URL, not an index package: not supported offline")
        rel = _package_rel(name, mpy, ver or "latest")
        raw = _http_get(f"{index}/{rel}", timeout)
        try:
            meta = json.loads(raw)
        except ValueError as e:
            raise PackageError(f"{index}/{rel}: not JSON") from e
        if meta.get("urls"):
            raise PackageError(f"package {name} pulls files from external URLs ({meta['urls'][0][1]}); "
                               "only index-hosted files can be cached")
        for target, short_hash in meta.get("hashes", ()):
            dest = cache / _file_rel(short_hash)
            if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest().startswith(short_hash):
                report.files_cached += 1
                continue
            data = _http_get(f"{index}/{_file_rel(short_hash)}", timeout)
            _check_hash(data, short_hash, f"{name}: {target}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            report.files_downloaded += 1
            report.bytes_downloaded += len(data)
            if on_file:
                on_file(f"{name}: {target}")
        # the package json last: a cache entry exists only when all its files do
        pj = cache / rel
        pj.parent.mkdir(parents=True, exist_ok=True)
        pj.write_bytes(raw)
        done.add(name)
        report.packages.append(name)
        todo.extend((d, v) for d, v in meta.get("deps", ()))
    return report


@dataclass(frozen=True)
class PackageFile:
    package: str
    path: str  # relative to the install target (/lib)
    data: bytes


def resolve(cache: Path, names: list[str], mpy_major: int | None = 6, version: str = "latest") -> list[PackageFile]:
    """Every file `names` and their dependencies install, read from the cache only."""
    mpy = mpy_dir(mpy_major)
    files: dict[str, PackageFile] = {}
    todo = [(n, version) for n in names]
    done: set[str] = set()
    while todo:
        name, ver = todo.pop(0)
        if name in done:
            continue
        rel = _package_rel(name, mpy, ver or "latest")
        pj = cache / rel
        if not pj.is_file():
            raise PackageError(f"package {name} ({ver or 'latest'}, .mpy v{mpy}) is not in the package cache "
                               f"{cache}: run `segel packages fetch {name}` while online")
        meta = json.loads(pj.read_text())
        for target, short_hash in meta.get("hashes", ()):
            fp = cache / _file_rel(short_hash)
            if not fp.is_file():
                raise PackageError(f"package {name}: file {target} ({short_hash}) missing from the cache {cache}: "
                                   f"run `segel packages fetch {name}` again")
            data = fp.read_bytes()
            _check_hash(data, short_hash, f"cached {name}: {target}")
            if ".." in target.split("/") or target.startswith("/"):
                raise PackageError(f"package {name}: unsafe install path {target!r}")
            files[target] = PackageFile(name, target, data)
        done.add(name)
        todo.extend((d, v) for d, v in meta.get("deps", ()))
    return [files[k] for k in sorted(files)]


def cached(cache: Path) -> list[tuple[str, str, str]]:
    """(mpy, name, version) of every package in the cache."""
    out = []
    for pj in sorted((cache / "package").glob("*/*/*.json")):
        out.append((pj.parent.parent.name, pj.parent.name, pj.stem))
    return out
