"""The package cache: filled from an index over HTTP (a loopback server with test-made packages,
since the real micropython-lib index is out of reach here), then read offline."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pkgindex
import pytest

from segel.provision import packages


@pytest.fixture
def index_url(index_dir: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(index_dir))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_fetch_fills_the_cache_with_packages_and_their_deps(index_url: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rep = packages.fetch(index_url, ["lora-sync", "lora-sx127x"], cache, mpy_major=6)
    assert rep.packages == ["lora-sync", "lora-sx127x", "lora"]
    assert rep.files_downloaded == 4 and rep.files_cached == 0
    assert packages.cached(cache) == [("6", "lora", "latest"), ("6", "lora-sx127x", "latest"),
                                      ("6", "lora-sync", "latest")]
    again = packages.fetch(index_url, ["lora-sx127x"], cache)
    assert again.files_downloaded == 0 and again.files_cached == 3
    files = packages.resolve(cache, ["lora-sync", "lora-sx127x"], 6)
    assert [f.path for f in files] == ["lora/__init__.mpy", "lora/modem.mpy", "lora/sx127x.mpy", "lora/sync_modem.mpy"]
    assert all(f.data[:1] == b"M" and f.data[1] == 6 for f in files)  # .mpy header: 'M', version 6


def test_unknown_package_and_unreachable_index(index_url: str, tmp_path: Path) -> None:
    with pytest.raises(packages.PackageError, match="HTTP 404"):
        packages.fetch(index_url, ["lora-nope"], tmp_path / "c")
    with pytest.raises(packages.PackageError, match="cannot reach the package index"):
        packages.fetch("http://127.0.0.1:9", ["lora"], tmp_path / "c", timeout=2)


def test_resolve_fails_clearly_when_a_package_is_missing(tmp_path: Path) -> None:
    cache = pkgindex.make_index(tmp_path / "c", only=["lora", "lora-sync"])
    with pytest.raises(packages.PackageError, match=r"package lora-sx126x \(latest, .mpy v6\) is not in the package "
                                                    r"cache .*segel packages fetch lora-sx126x"):
        packages.resolve(cache, ["lora-sync", "lora-sx126x"], 6)
    with pytest.raises(packages.PackageError, match=r"\.mpy v7"):
        packages.resolve(cache, ["lora"], 7)


def test_a_tampered_cache_file_is_refused(tmp_path: Path) -> None:
    cache = pkgindex.make_index(tmp_path / "c", only=["lora"])
    meta = json.loads((cache / "package/6/lora/latest.json").read_text())
    h = meta["hashes"][0][1]
    victim = cache / "file" / h[:2] / h
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(packages.PackageError, match=f"lora/__init__.mpy: content does not match its hash {h}"):
        packages.resolve(cache, ["lora"], 6)


def test_board_packages() -> None:
    assert packages.board_packages({"id": "a", "radio": {"chip": "sx1276"}}) == ["lora", "lora-sync", "lora-sx127x"]
    assert packages.board_packages({"id": "b", "radio": {"chip": "sx1262"}})[-1] == "lora-sx126x"
    with pytest.raises(packages.PackageError, match="no LoRa driver package"):
        packages.board_packages({"id": "c", "radio": {"chip": "llcc68"}})
