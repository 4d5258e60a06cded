"""What travels between a regency and the nation: the message envelope, item kinds, box states.

A message is one JSON object: `{"v": 1, "regency": "64.08", "name": "Kutai Timur", "sent": <unix s>,
"items": [item, ...]}`; items carry consecutive `seq` numbers of that regency, each
`{"seq", "kind", "subject", "at", "committed", "body"}` (docs/national.md). A receipt from the
nation is `{"v": 1, "regency": "64.08", "applied": <seq>}`: everything up to `applied` is stored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

VERSION = 1
KINDS = ("alert", "custody", "box", "position", "summary", "checkpoint", "signing_key")

# A box's custody state, from its latest location finding.
LOCATIONS = ("warehouse", "ppk", "pps", "tps")
IN_TRANSIT, UNKNOWN = "in_transit", "unknown"
STATES = (UNKNOWN, "warehouse", "ppk", "pps", "tps", IN_TRANSIT)
OPENINGS = ("seal_authorised", "seal_unauthorised", "case_opened")
SEAL_KINDS = OPENINGS + ("seal_event",)


def location_state(finding: str | None, place_kind: str | None) -> str:
    """enter/arrived at a place of kind K -> K (other places count as in transit); exit -> in transit."""
    if finding is None:
        return UNKNOWN
    if finding in ("enter", "arrived") and place_kind in LOCATIONS:
        return place_kind  # type: ignore[return-value]
    return IN_TRANSIT


class MessageError(ValueError):
    """A message that cannot be read; str(e) says what is wrong (logged with the regency)."""


@dataclass(frozen=True)
class Item:
    seq: int
    kind: str
    subject: str | None
    at: float | None
    committed: float
    body: dict


@dataclass(frozen=True)
class Message:
    regency: str
    name: str
    sent: float
    items: list[Item]


def _num(v: Any, where: str, allow_none: bool = False) -> float | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MessageError(f"{where}: expected a number, got {v!r}")
    return float(v)


def encode(regency: str, name: str, sent: float, item_json: list[str]) -> bytes:
    """The message for items already serialised by the regency's SQLite (capture.pending)."""
    head = json.dumps({"v": VERSION, "regency": regency, "name": name, "sent": round(sent, 3)}, separators=(",", ":"))
    return (head[:-1] + ',"items":[' + ",".join(item_json) + "]}").encode()


def decode(payload: bytes) -> Message:
    """Parse and check a message; MessageError names the first problem."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise MessageError(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise MessageError(f"not a JSON object but a {type(doc).__name__}")
    if doc.get("v") != VERSION:
        raise MessageError(f"field v: version {doc.get('v')!r} is not {VERSION}")
    regency, name = doc.get("regency"), doc.get("name", "")
    if not isinstance(regency, str):
        raise MessageError(f"field regency: expected text, got {regency!r}")
    if not isinstance(name, str):
        raise MessageError(f"field name: expected text, got {name!r}")
    sent = _num(doc.get("sent"), "field sent")
    raw = doc.get("items")
    if not isinstance(raw, list) or not raw:
        raise MessageError("field items: expected a non-empty list")
    items: list[Item] = []
    for i, it in enumerate(raw):
        where = f"items[{i}]"
        if not isinstance(it, dict):
            raise MessageError(f"{where}: not an object")
        seq = it.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise MessageError(f"{where}.seq: expected a positive integer, got {seq!r}")
        if items and seq != items[-1].seq + 1:
            raise MessageError(f"{where}.seq: {seq} does not follow {items[-1].seq}")
        kind = it.get("kind")
        if kind not in KINDS:
            raise MessageError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
        subject = it.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise MessageError(f"{where}.subject: expected text, got {subject!r}")
        body = it.get("body")
        if not isinstance(body, dict):
            raise MessageError(f"{where}.body: expected an object")
        items.append(Item(seq, kind, subject, _num(it.get("at"), f"{where}.at", True),
                          _num(it.get("committed"), f"{where}.committed"), body))  # type: ignore[arg-type]
    return Message(regency, name, sent, items)  # type: ignore[arg-type]


def receipt(regency: str, applied: int) -> bytes:
    return json.dumps({"v": VERSION, "regency": regency, "applied": applied}, separators=(",", ":")).encode()


def read_receipt(payload: bytes) -> tuple[str, int]:
    try:
        doc = json.loads(payload)
        regency, applied = doc["regency"], doc["applied"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise MessageError(f"not a receipt: {e}") from None
    if not isinstance(regency, str) or isinstance(applied, bool) or not isinstance(applied, int) or applied < 0:
        raise MessageError(f"not a receipt: regency {regency!r}, applied {applied!r}")
    return regency, applied
