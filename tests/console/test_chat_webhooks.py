"""Webhook templates for chat gateways: Telegram, WhatsApp Business, plain text; delivered signed to a receiver."""

from __future__ import annotations

import json

from segel.notify import templates
from segel.notify.webhooks import SIGNATURE_HEADER, WebhookNotifier, verify_signature

from tests.rules.test_webhooks import Receiver, wait_for

ALERT = {"schema": "segel.alert/1", "event": "acknowledged", "id": "AL-0123456789ab", "kind": "seal_unauthorised",
         "severity": "critical", "state": "acknowledged", "box": "64.08.01.2001-001-GUB", "device": "000101",
         "place": "64.08.01.2001-001", "district": "64.08.01", "device_ts": 1732683900.0, "late": True,
         "acknowledged_by": "sari (Sari Dewi)", "ack_note": "polisi menuju lokasi",
         "message": "seal loop cut/opened or lid opened outside an authorised place and window",
         "detail": {"event": "loop_open", "seq": 1}}


def test_telegram_body_in_indonesian_and_local_time() -> None:
    doc = json.loads(templates.render("telegram", ALERT, language="id", timezone="WITA", chat_id="-100123",
                                      names={"64.08.01.2001-001": "TPS 001 Senyiur"}))
    assert doc["chat_id"] == "-100123" and doc["disable_web_page_preview"] is True
    assert doc["text"].splitlines() == [
        "[KRITIS] Segel dibuka di tempat yang tidak diizinkan",
        "Segel dibuka di TPS 001 Senyiur, padahal pembukaan tidak diizinkan di sana pada waktu itu (kawat segel terbuka)",
        "Kotak: 64.08.01.2001-001-GUB", "Tempat: TPS 001 Senyiur (64.08.01.2001-001)",
        "27 Nov 2024 13.05 WITA (terlambat) · ditangani", "sari (Sari Dewi): polisi menuju lokasi", "AL-0123456789ab"]


def test_whatsapp_and_text_shapes() -> None:
    wa = json.loads(templates.render("whatsapp", ALERT, language="en", timezone="WIB", chat_id="6281234567890"))
    assert (wa["messaging_product"], wa["to"], wa["type"]) == ("whatsapp", "6281234567890", "text")
    assert wa["text"]["body"].startswith("[CRITICAL] Seal opened where it may not be\nSeal opened at 64.08.01.2001-001, "
                                          "where no opening is authorised at that time (seal wire opened)\n")
    assert "27 Nov 2024 12:05 WIB (late) · acknowledged" in wa["text"]["body"]
    assert set(json.loads(templates.render("text", ALERT))) == {"text"}
    assert json.loads(templates.render("segel", ALERT)) == ALERT


def test_a_template_is_posted_signed() -> None:
    hook = Receiver([])
    n = WebhookNotifier([hook.url], b"s3cret", render=lambda a: templates.render("telegram", a, chat_id="42")).start()
    try:
        n.submit(ALERT)
        wait_for(lambda: n.stats.delivered == 1)
    finally:
        n.stop()
        hook.close()
    (_t, headers, body), = hook.requests
    assert json.loads(body)["chat_id"] == "42" and verify_signature(b"s3cret", headers[SIGNATURE_HEADER], body)
