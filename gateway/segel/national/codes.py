"""Regency codes and the national topics: `64.08` (Kemendagri/BPS, as the places use it) <-> `6408`.

NATS's MQTT listener refuses topics that contain `.` or a space (nats-server 2.9, `mqtt.go`:
"characters ' ' and '.' not supported for MQTT topics"), and MQTT levels become NATS subject
tokens anyway, so on the national bus a regency is its four digits without the dot, under its
province's two: `segel/up/64/6408`. The mapping is one-to-one because every part is two digits.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"^(\d{2})\.(\d{2})$")
_TOKEN = re.compile(r"^(\d{2})(\d{2})$")

UP_PREFIX = "segel/up"
RECEIPT_PREFIX = "segel/receipt"
UP_ALL = f"{UP_PREFIX}/#"


class CodeError(ValueError):
    pass


def parse(code: str) -> str:
    """A regency code as written in the places (`64.08`); `6408` is accepted too. Raises CodeError."""
    c = (code or "").strip()
    m = _CODE.match(c) or _TOKEN.match(c)
    if not m:
        raise CodeError(f"{code!r} is not a regency code: expected two digits, a dot, two digits (e.g. 64.08)")
    if m.group(2) == "00":
        raise CodeError(f"{code!r} is a province code, not a regency (e.g. 64.08)")
    return f"{m.group(1)}.{m.group(2)}"


def token(code: str) -> str:
    """`64.08` -> `6408`: the form used in topics, NATS subjects and user names."""
    return parse(code).replace(".", "")


def from_token(tok: str) -> str:
    """`6408` -> `64.08`."""
    if not _TOKEN.match(tok or ""):
        raise CodeError(f"{tok!r} is not a regency token (four digits, e.g. 6408)")
    return parse(tok)


def province(code: str) -> str:
    return parse(code)[:2]


def up_topic(code: str) -> str:
    """Where a regency publishes: `segel/up/64/6408`."""
    return f"{UP_PREFIX}/{province(code)}/{token(code)}"


def receipt_topic(code: str) -> str:
    """Where the national tier answers a regency: `segel/receipt/6408`."""
    return f"{RECEIPT_PREFIX}/{token(code)}"


def subject(topic: str) -> str:
    """The NATS subject an MQTT topic maps to (levels become tokens)."""
    return topic.replace("/", ".").replace("#", ">").replace("+", "*")


def regency_of_topic(topic: str) -> str:
    """The regency an up topic belongs to; CodeError when the topic is not `segel/up/PP/PPRR`
    with a matching province."""
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != UP_PREFIX:
        raise CodeError(f"topic {topic!r} is not {UP_PREFIX}/<province>/<regency>")
    code = from_token(parts[3])
    if province(code) != parts[2]:
        raise CodeError(f"topic {topic!r}: regency {code} is not in province {parts[2]}")
    return code


def user(code: str) -> str:
    """The regency's account on the national message layer."""
    return f"regency-{token(code)}"
