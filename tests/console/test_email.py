"""Email for critical alerts through a real SMTP server (aiosmtpd on loopback): to the right users, in their language."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from segel import accounts, store
from segel import config as cfgmod
from segel.notify.email import EmailNotifier, SmtpSettings
from segel.service.assemble import assemble

from tests import servers
from tests.rules.world import CALENDAR, places

PW = "a good password"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = servers.free_port()
    c = Controller(inbox, hostname="127.0.0.1", port=port)
    c.start()
    yield inbox, port
    c.stop()


def _world(tmp_path: Path) -> Path:
    from segel.places import io as places_io

    db = tmp_path / "segel.db"
    conn = store.connect(db)
    places_io.store(conn, places())
    accounts.add(conn, "sari", "supervisor", PW, email="sari@kpu.example", email_alerts=True)  # everywhere, Indonesian
    accounts.add(conn, "ani", "operator", PW, districts=["K1"], email="ani@kpu.example", email_alerts=True, language="en")
    accounts.add(conn, "budi", "operator", PW, districts=["K9"], email="budi@kpu.example", email_alerts=True)
    accounts.add(conn, "vera", "viewer", PW, email="vera@bawaslu.example")  # no email alerts asked for
    accounts.add(conn, "old", "operator", PW, email="old@kpu.example", email_alerts=True)
    accounts.set_disabled(conn, "old")
    conn.close()
    return db


ALERT = {"schema": "segel.alert/1", "event": "raised", "id": "AL-0123456789ab", "kind": "seal_unauthorised",
         "severity": "critical", "state": "open", "box": "BOX-1", "device": "000101", "place": "T1",
         "district": "K1", "device_ts": 1732458600.0, "raised_ts": 1732458610.0, "late": False,
         "message": "seal loop cut/opened or lid opened outside an authorised place and window",
         "detail": {"event": "lid_open", "seq": 2}}


def _wait(inbox: Inbox, n: int) -> None:
    end = time.time() + 15
    while len(inbox.messages) < n and time.time() < end:
        time.sleep(0.05)


def test_critical_alert_mailed_to_users_whose_scope_holds_it_in_their_language(tmp_path: Path, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    db = _world(tmp_path)
    n = EmailNotifier(db, SmtpSettings("127.0.0.1", port, "none", sender="segel@kpu.example"),
                      console_url="https://segel.kpu.example").start()
    try:
        assert n.submit(ALERT)
        assert not n.submit({**ALERT, "event": "acknowledged"})  # only new alerts and reminders
        assert not n.submit({**ALERT, "severity": "high", "kind": "off_corridor"})  # below notify.email_min_severity
        _wait(inbox, 2)
        time.sleep(0.3)
    finally:
        n.stop()
    got = {rcpt[0]: m for rcpt, m in inbox.messages}
    assert set(got) == {"sari@kpu.example", "ani@kpu.example"}  # not budi (K9), vera (no alerts), old (disabled)
    sari, ani = got["sari@kpu.example"], got["ani@kpu.example"]
    assert " ".join(sari["Subject"].split()) == "[Segel] KRITIS: Segel dibuka di tempat yang tidak diizinkan · BOX-1"
    assert " ".join(ani["Subject"].split()) == "[Segel] CRITICAL: Seal opened where it may not be · BOX-1"
    text = sari.get_content()
    assert "Tempat: TPS 001" in text and "Kecamatan: PPK 1" in text and "Waktu (WITA): 24 Nov 2024 22.30 WITA" in text
    assert "Buka di konsol: https://segel.kpu.example/alerts/AL-0123456789ab" in text
    assert "When (WITA): 24 Nov 2024 22:30 WITA" in ani.get_content()
    # what happened in the reader's words (the place by name), not the stored English message
    assert "Apa yang terjadi: Segel dibuka di TPS 001, padahal pembukaan tidak diizinkan di sana pada waktu itu " \
           "(tutup kotak dibuka)" in text and "outside an authorised place" not in text
    assert "What happened: Seal opened at TPS 001, where no opening is authorised at that time (lid opened)" \
           in ani.get_content()
    assert sari["X-Segel-Alert-Id"] == "AL-0123456789ab"


def test_the_gateway_assembly_mails_through_the_configured_server(tmp_path: Path, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    db = _world(tmp_path)
    (tmp_path / "calendar.toml").write_text(CALENDAR)
    cfg = cfgmod.load(None, env={}, overrides={
        "gateway.db": str(db), "custody.calendar": str(tmp_path / "calendar.toml"), "notify.smtp_host": "127.0.0.1",
        "notify.smtp_port": port, "notify.smtp_security": "none", "locale.language": "id"})
    parts = assemble(cfg)
    try:
        assert "email via 127.0.0.1" in parts.summary and parts.on_alerts is not None
        parts.on_alerts([{**ALERT, "event": "renotify"}])
        _wait(inbox, 2)
    finally:
        parts.close()
    texts = {m["To"]: m.get_content() for _r, m in inbox.messages}
    assert "Reminder: this alert is still not acknowledged." in texts["ani@kpu.example"]
    assert "Pengingat: peringatan ini belum juga ditangani." in texts["sari@kpu.example"]  # no language: locale.language


def test_starttls_is_required_when_asked_for(tmp_path: Path, smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    db = _world(tmp_path)
    n = EmailNotifier(db, SmtpSettings("127.0.0.1", port, "starttls"), max_attempts=1).start()
    try:
        n.submit(ALERT)
        end = time.time() + 10
        while not n.stats.failed and time.time() < end:
            time.sleep(0.05)
    finally:
        n.stop()
    assert n.stats.failed == 2 and "does not offer STARTTLS" in n.stats.last_error and not inbox.messages
