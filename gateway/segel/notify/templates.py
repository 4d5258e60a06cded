"""Webhook bodies for chat gateways: the alert as a short message in the configured language.

`custody.webhook_template` picks the JSON a receiver expects (docs/console.md, "Chat gateways"):

- `segel` (default): the alert's published JSON (`segel.alert/1`, docs/alerts.md);
- `telegram`: a Telegram Bot API `sendMessage` body, `{"chat_id": ..., "text": ...}` — point the
  URL at `https://api.telegram.org/bot<token>/sendMessage`;
- `whatsapp`: a WhatsApp Business (Cloud API) text message, `{"messaging_product": "whatsapp",
  "to": ..., "type": "text", "text": {"body": ...}}` — the URL is the provider's `/messages`;
- `text`: `{"text": ...}`, which Slack-style incoming webhooks and most chat bridges accept.

`custody.webhook_chat_id` is the Telegram chat or the WhatsApp recipient. Every request still
carries the `X-Segel-Signature` header, which those APIs ignore.
"""

from __future__ import annotations

import json

from segel import i18n
from segel.custody import display
from segel.custody.display import KIND_LABELS, SEVERITY_LABELS, STATE_LABELS

TEMPLATES = ("segel", "telegram", "whatsapp", "text")


def text(alert: dict, language: str | None, timezone: str | None, names: display.Names = None) -> str:
    """One short paragraph: severity, kind, what happened, box, place, local time, state, who acted.
    `names`: place names by code (the gateway's places), else places show as codes."""
    t = i18n.translator(language, timezone)
    kind = t._(KIND_LABELS.get(alert.get("kind", ""), alert.get("kind", "")))
    sev = t._(SEVERITY_LABELS.get(alert.get("severity", ""), alert.get("severity", ""))).upper()
    state = t._(STATE_LABELS.get(alert.get("state", ""), alert.get("state", "")))
    when = t.datetime(alert.get("device_ts") or alert.get("raised_ts"))
    box_label, place_label, late_label = t._("Box"), t._("Place"), t._("late")
    lines = [f"[{sev}] {kind}", display.describe(t, alert, names),
             f"{box_label}: {alert.get('box') or alert.get('device') or '–'}"]
    if alert.get("place"):
        name = display.namer(names)(alert["place"])
        lines.append(f"{place_label}: {name}" + (f" ({alert['place']})" if name != alert["place"] else ""))
    lines.append(f"{when}" + (f" ({late_label})" if alert.get("late") else "") + f" · {state}")
    who = alert.get("resolved_by") or alert.get("acknowledged_by")
    note = alert.get("resolve_note") or alert.get("ack_note")
    if who and alert.get("state") in ("acknowledged", "resolved"):
        lines.append(f"{who}" + (f": {note}" if note else ""))
    lines.append(str(alert.get("id", "")))
    return "\n".join(lines)


def render(template: str, alert: dict, *, language: str | None = None, timezone: str | None = None,
           chat_id: str = "", names: display.Names = None) -> bytes:
    if template == "segel":
        return json.dumps(alert, separators=(",", ":"), sort_keys=True).encode()
    msg = text(alert, language, timezone, names)
    if template == "telegram":
        doc: dict = {"chat_id": chat_id, "text": msg, "disable_web_page_preview": True}
    elif template == "whatsapp":
        doc = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": chat_id, "type": "text",
               "text": {"preview_url": False, "body": msg}}
    elif template == "text":
        doc = {"text": msg}
    else:
        raise ValueError(f"webhook template {template!r}: one of {', '.join(TEMPLATES)}")
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
