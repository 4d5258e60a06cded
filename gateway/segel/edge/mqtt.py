"""The broker connection: broker URLs, and a durable paho-mqtt 2.x client (stable id, persistent session)."""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        return f"Broker({'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port})"


def parse_url(url: str) -> Broker:
    """`mqtt://[user[:password]@]host[:1883]` or `mqtts://…[:8883]` (TLS, certificate checked)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"{url!r}: broker URL must start with mqtt:// or mqtts://")
    if not u.hostname:
        raise ValueError(f"{url!r}: no host in broker URL (e.g. mqtt://127.0.0.1:1883)")
    tls = u.scheme in ("mqtts", "ssl")
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError as e:
        raise ValueError(f"{url!r}: bad port ({e})") from None
    return Broker(u.hostname, port, tls, urllib.parse.unquote(u.username) if u.username else None,
                  urllib.parse.unquote(u.password) if u.password else None)


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    u = urllib.parse.urlsplit(url)
    if u.password is None:
        return url
    netloc = f"{u.username}:***@{u.hostname}" + (f":{u.port}" if u.port else "")
    return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


def make_client(client_id: str, broker: Broker, *, mqtt5: bool = True, manual_ack: bool = True,
                username: str | None = None, password: str | None = None, ca_file: str | None = None,
                tls_insecure: bool = False, reconnect_min_s: float = 1, reconnect_max_s: float = 30) -> paho.Client:
    """A paho 2.x client for a durable consumer: stable id, persistent session (see connect())."""
    proto = paho.MQTTv5 if mqtt5 else paho.MQTTv311
    kw: dict[str, Any] = {} if mqtt5 else {"clean_session": False}
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto, manual_ack=manual_ack, **kw)
    user = username or broker.username
    if user:
        c.username_pw_set(user, password if password is not None else broker.password)
    if broker.tls:
        c.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_NONE if tls_insecure else ssl.CERT_REQUIRED)
        if tls_insecure:
            c.tls_insecure_set(True)
    c.reconnect_delay_set(min_delay=max(1, int(reconnect_min_s)), max_delay=max(1, int(reconnect_max_s)))
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    return c


def connect_async(c: paho.Client, broker: Broker, *, mqtt5: bool = True, session_expiry_s: int = 7 * 86400,
                  keepalive_s: int = 30) -> None:
    """Connect without Clean Start and with a session expiry, so the broker keeps our QoS 1
    messages while we are away (paho's default would discard them on every process start)."""
    if mqtt5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry_s
        c.connect_async(broker.host, broker.port, keepalive=keepalive_s, clean_start=False, properties=props)
    else:
        c.connect_async(broker.host, broker.port, keepalive=keepalive_s)
