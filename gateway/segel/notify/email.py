"""Email for alerts: to every user who asked for it (`segel users add --email ... --email-alerts`) and whose
districts hold the alert, in that user's language, through SMTP.

The gateway hands every alert change to `EmailNotifier.submit()` (next to the webhooks); only a new
alert (`raised`) or a reminder (`renotify`) at least `notify.email_min_severity` (critical by
default) becomes mail. A background thread sends one message per recipient, retrying a failed
server with backoff; like the webhooks the queue is in memory: the durable records of an alert
are SQLite, InfluxDB and MQTT, and email is a push on top of them.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from segel import accounts, i18n, store
from segel.custody import display
from segel.custody.alerts import SEVERITY_ORDER
from segel.custody.display import KIND_LABELS, SEVERITY_LABELS
from segel.places import io as places_io

log = logging.getLogger("segel.notify.email")
EVENTS = ("raised", "renotify")


@dataclass
class SmtpSettings:
    host: str
    port: int = 25
    security: str = "starttls"  # none | starttls | tls
    username: str = ""
    password: str = ""
    sender: str = "segel@localhost"
    timeout_s: float = 20.0


@dataclass
class EmailStats:
    submitted: int = 0
    sent: int = 0
    failed: int = 0
    last_error: str = ""


def recipients(db: Path, alert: dict) -> list[accounts.User]:
    """Users with email alerts on, enabled, an address, and the alert inside their scope."""
    conn = store.connect(db)
    try:
        chain: list[str] = []
        code = alert.get("place")
        while code and len(chain) < 8:
            chain.append(code)
            r = conn.execute("SELECT parent FROM places WHERE code = ?", (code,)).fetchone() if _has(conn, "places") else None
            code = r[0] if r else None
        return [u for u in accounts.listing(conn)
                if u.email_alerts and u.email and not u.disabled and u.sees(alert.get("district"), chain)]
    finally:
        conn.close()


def _has(conn: object, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None  # type: ignore[attr-defined]


def compose(alert: dict, user: accounts.User, sender: str, tz: str, default_lang: str, console_url: str,
            names: dict[str, str]) -> EmailMessage:
    """One message for one user, in the user's language and the configured zone."""
    t = i18n.translator(user.language or default_lang, tz)
    kind = t._(KIND_LABELS.get(alert["kind"], alert["kind"]))
    sev = t._(SEVERITY_LABELS.get(alert["severity"], alert["severity"]))
    where = names.get(alert.get("place") or "", alert.get("place") or "–")
    district = names.get(alert.get("district") or "", alert.get("district") or "–")
    when = t.datetime(alert.get("device_ts") or alert.get("raised_ts"))
    m = EmailMessage()
    m["Subject"] = f"[Segel] {sev.upper()}: {kind} · {alert.get('box') or alert.get('device') or ''}"
    m["From"] = sender
    m["To"] = user.email
    m["Date"] = formatdate(localtime=False)
    m["Message-ID"] = make_msgid(domain="segel")
    m["X-Segel-Alert-Id"] = str(alert["id"])
    # labels first: Babel cannot see strings inside f-strings
    late, box, tracker, place, dist = t._("late"), t._("Box"), t._("Tracker"), t._("Place"), t._("District")
    when_label, what, open_label = t._("When (%(zone)s)") % {"zone": t.zone_name}, t._("What happened"), t._("Open in the console")
    lines = [
        f"{kind} ({sev})" + (f" · {late}" if alert.get("late") else ""),
        "",
        f"{box}: {alert.get('box') or '–'}",
        f"{tracker}: {alert.get('device') or '–'}",
        f"{place}: {where}",
        f"{dist}: {district}",
        f"{when_label}: {when}",
        f"{what}: {display.describe(t, alert, names)}",
        f"ID: {alert['id']}",
    ]
    if alert.get("event") == "renotify":
        lines.insert(1, t._("Reminder: this alert is still not acknowledged."))
    if console_url:
        lines += ["", f"{open_label}: {console_url.rstrip('/')}/alerts/{alert['id']}"]
    m.set_content("\n".join(lines) + "\n")
    return m


class EmailNotifier:
    def __init__(self, db: Path, smtp: SmtpSettings, *, min_severity: str = "critical", language: str = "id",
                 timezone: str = "Asia/Makassar", console_url: str = "", max_attempts: int = 5,
                 backoff_s: float = 5.0) -> None:
        if min_severity not in SEVERITY_ORDER:
            raise ValueError(f"notify.email_min_severity {min_severity!r}: one of {', '.join(SEVERITY_ORDER)}")
        self.db = db
        self.smtp = smtp
        self.min_severity = min_severity
        self.language = language
        self.timezone = timezone
        self.console_url = console_url
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.stats = EmailStats()
        self._q: queue.Queue[dict | None] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> EmailNotifier:
        self._thread = threading.Thread(target=self._run, name="segel-email", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._q.put(None)
        if self._thread:
            self._thread.join(timeout)

    def wanted(self, alert: dict) -> bool:
        sev = alert.get("severity", "info")
        return alert.get("event") in EVENTS and sev in SEVERITY_ORDER and \
            SEVERITY_ORDER.index(sev) <= SEVERITY_ORDER.index(self.min_severity)

    def submit(self, alert: dict) -> bool:
        """Queue an alert (returns at once); False when it is not for email or the queue is full."""
        if not self.wanted(alert):
            return False
        try:
            self._q.put_nowait(alert)
        except queue.Full:
            log.error("email queue full: alert %s not mailed (it is in SQLite and on MQTT)", alert.get("id"))
            return False
        self.stats.submitted += 1
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            alert = self._q.get()
            if alert is None:
                return
            try:
                users = recipients(self.db, alert)
                if not users:
                    continue
                conn = store.connect(self.db)
                try:
                    names = places_io.names(conn, display.place_codes([alert]))
                finally:
                    conn.close()
                msgs = [compose(alert, u, self.smtp.sender, self.timezone, self.language, self.console_url, names)
                        for u in users]
                self._send(msgs, str(alert.get("id")))
            except Exception:  # noqa: BLE001 - one bad alert must not stop the mail thread
                log.exception("email for alert %s failed", alert.get("id"))

    def _send(self, msgs: list[EmailMessage], alert_id: str) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self._connect() as s:
                    for m in msgs:
                        s.send_message(m)
                self.stats.sent += len(msgs)
                return
            except (smtplib.SMTPException, OSError) as e:
                self.stats.last_error = f"{type(e).__name__}: {e}"
                if attempt == self.max_attempts or self._stop.is_set():
                    break
                delay = min(300.0, self.backoff_s * 2 ** (attempt - 1))
                log.warning("email for alert %s: %s; retry %d in %.0f s", alert_id, self.stats.last_error, attempt + 1, delay)
                if self._stop.wait(delay):
                    break
        self.stats.failed += len(msgs)
        log.error("email for alert %s given up: %s", alert_id, self.stats.last_error)

    def _connect(self) -> smtplib.SMTP:
        c = self.smtp
        if c.security == "tls":
            s: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=ssl.create_default_context())
        else:
            s = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
            if c.security == "starttls":
                s.ehlo()
                if not s.has_extn("starttls"):
                    s.close()
                    raise smtplib.SMTPNotSupportedError(
                        f"{c.host}:{c.port} does not offer STARTTLS (notify.smtp_security = none sends in the clear)")
                s.starttls(context=ssl.create_default_context())
                s.ehlo()
        if c.username:
            s.login(c.username, c.password)
        return s
