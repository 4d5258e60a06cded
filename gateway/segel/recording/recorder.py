"""A rotating recording of every uplink the gateway received, accepted or not.

One JSON object per line: `{"received_at": unix s, "topic": str, "frame": hex, "meta": {...}|null}`
(plus `"error"` when the MQTT payload itself could not be read, e.g. bad bridge JSON; `frame`
then holds the raw payload). Files: `uplinks.jsonl` (current), `uplinks.jsonl.1` (previous) …
`uplinks.jsonl.<keep>`. `read()` yields the uplinks again, oldest first, for `segel replay`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from segel.edge.payloads import uplink
from segel.messages import RxMeta, Uplink

log = logging.getLogger("segel.recording.recorder")

FILENAME = "uplinks.jsonl"
_META_KEYS = ("rssi", "snr", "base_id", "bridge_id", "freq_khz", "sf", "rx_time")


_json_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for a str (ensure_ascii)


def to_json(up: Uplink, error: str | None = None) -> str:
    if up.meta is None and not error and isinstance(up.received_at, float) and math.isfinite(up.received_at):
        # the common line (a tracker's frame over WiFi), byte for byte what json.dumps writes below
        return (f'{{"received_at":{up.received_at!r},"topic":{_json_str(up.topic)},"frame":"{up.frame.hex()}",'
                '"meta":null}')
    d: dict = {"received_at": up.received_at, "topic": up.topic, "frame": up.frame.hex(),
               "meta": {k: v for k, v in up.meta.__dict__.items() if v is not None} if up.meta else None}
    if error:
        d["error"] = error
    return json.dumps(d, separators=(",", ":"))


def from_json(obj: dict) -> Uplink:
    meta = obj.get("meta")
    return uplink(float(obj["received_at"]), str(obj["topic"]), bytes.fromhex(obj["frame"]),
                  RxMeta(**{k: meta[k] for k in _META_KEYS if k in meta}) if meta else None)


class Recorder:
    """Appends uplinks; rotates at `max_bytes`, keeping `keep` old files. Not thread-safe:
    one writer (the gateway's worker thread)."""

    def __init__(self, directory: str | Path, max_bytes: int = 64 * 1024 * 1024, keep: int = 10) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / FILENAME
        self.max_bytes = max_bytes
        self.keep = keep
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - long-lived
        self._size = self._fh.tell()

    def write(self, up: Uplink, error: str | None = None) -> None:
        self.write_lines([to_json(up, error)])

    def write_lines(self, lines: Iterable[str]) -> None:
        data = "".join(ln + "\n" for ln in lines)
        if not data:
            return
        self._fh.write(data)
        self._size += len(data)
        if self._size >= self.max_bytes:
            self.rotate()

    def flush(self) -> None:
        self._fh.flush()

    def rotate(self) -> None:
        self._fh.close()
        for i in range(self.keep - 1, 0, -1):
            src = self.dir / f"{FILENAME}.{i}"
            if src.exists():
                os.replace(src, self.dir / f"{FILENAME}.{i + 1}")
        if self.keep > 0:
            os.replace(self.path, self.dir / f"{FILENAME}.1")
        else:
            self.path.unlink()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self._fh.close()


def files(path: str | Path) -> list[Path]:
    """The recording files under a directory, oldest first; a file is returned as is."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"no recording at {p} (expected a directory holding {FILENAME} or a .jsonl file)")
    rotated = sorted((f for f in p.glob(f"{FILENAME}.*") if f.suffix.lstrip(".").isdigit()),
                     key=lambda f: -int(f.suffix[1:]))
    return rotated + ([p / FILENAME] if (p / FILENAME).exists() else [])


def read(path: str | Path, include_errors: bool = True) -> Iterator[Uplink]:
    """Yield every recorded uplink in receive order. A line that cannot be read (e.g. the last
    line cut short by a crash) is logged with its file and line number and skipped."""
    for f in files(path):
        with open(f, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if not include_errors and obj.get("error"):
                        continue
                    yield from_json(obj)
                except (ValueError, KeyError, TypeError) as e:
                    log.warning("%s:%d: unreadable recording line skipped (%s)", f, n, e)
