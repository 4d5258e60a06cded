"""Alert delivery beyond MQTT: signed webhooks, retried with backoff, never blocking ingest.

The gateway publishes every alert dict a judge returns on `segel/alerts/<kind>` (the MQTT
notifier is the pipeline itself); it also hands each to `WebhookNotifier.submit()`, which only
puts it on a queue. A background thread POSTs the JSON to every configured URL with the header

    X-Segel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

(the scheme Stripe and GitHub receivers know: the timestamp is signed too, so a captured request
cannot be replayed later; `verify_signature()` is the receiver's side). A connection error, a
timeout, 429 or 5xx is retried with exponential backoff (and jitter) up to `max_attempts`; other
4xx answers are not retried. The queue is in memory: the durable records of an alert are SQLite
and InfluxDB; a webhook is a push on top of them.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("segel.notify")

SIGNATURE_HEADER = "X-Segel-Signature"


def sign(secret: bytes, body: bytes, t: int) -> str:
    mac = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: bytes, header: str, body: bytes, now: float | None = None, tolerance_s: float = 300) -> bool:
    """The receiver's check: a valid MAC over the timestamp and body, and a fresh timestamp."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    want = sign(secret, body, t).split("v1=")[1]
    return hmac.compare_digest(want, parts.get("v1", ""))


@dataclass
class WebhookStats:
    submitted: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    last_error: str = ""


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    alert_id: str = field(compare=False)
    attempt: int = field(compare=False, default=1)


class WebhookNotifier:
    def __init__(self, urls: list[str], secret: bytes, *, max_attempts: int = 8, backoff_s: float = 2.0,
                 max_backoff_s: float = 300.0, timeout_s: float = 10.0, max_queue: int = 100_000,
                 min_severity: str | None = None, render: Callable[[dict], bytes] | None = None) -> None:
        """render: the body for an alert (segel.notify.templates for chat gateways); default its JSON."""
        if not secret:
            raise ValueError("a webhook secret is needed to sign deliveries")
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"webhook URL {u!r} must start with http:// or https://")
        self.urls = list(urls)
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.max_queue = max_queue
        self.min_severity = min_severity
        self.render = render
        self.stats = WebhookStats()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookNotifier:
        self._thread = threading.Thread(target=self._run, name="segel-webhooks", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread:
            self._thread.join(timeout)

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def submit(self, alert: dict) -> bool:
        """Queue one alert for every URL; returns at once (False when the queue is full)."""
        from segel.custody.alerts import SEVERITY_ORDER

        if self.min_severity and SEVERITY_ORDER.index(alert.get("severity", "info")) > SEVERITY_ORDER.index(self.min_severity):
            return True
        body = self.render(alert) if self.render else json.dumps(alert, separators=(",", ":"), sort_keys=True).encode()
        return self._enqueue(body, str(alert.get("id")), "alert")

    def submit_document(self, doc: dict, doc_id: str) -> bool:
        """Queue any other document (signed ledger checkpoints) for every URL, whatever min_severity;
        `doc_id` goes in the X-Segel-Alert-Id header. Not for a chat template (a chat gets alerts
        only): returns False there."""
        if self.render is not None:
            return False
        return self._enqueue(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode(), doc_id, "document")

    def _enqueue(self, body: bytes, doc_id: str, what: str) -> bool:
        with self._cv:
            if len(self._heap) + len(self.urls) > self.max_queue:
                self.stats.dropped += 1
                log.error("webhook queue full (%d): %s %s not pushed (it is in SQLite and on MQTT)",
                          len(self._heap), what, doc_id)
                return False
            now = time.monotonic()
            for u in self.urls:
                heapq.heappush(self._heap, _Job(now, next(self._seq), u, body, doc_id))
            self.stats.submitted += 1
            self._cv.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._heap or self._heap[0].due > time.monotonic()):
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0].due - time.monotonic()))
                if self._stop:
                    return
                job = heapq.heappop(self._heap)
            ok, retry, err = self._post(job)
            with self._cv:
                if ok:
                    self.stats.delivered += 1
                elif retry and job.attempt < self.max_attempts:
                    delay = min(self.max_backoff_s, self.backoff_s * 2 ** (job.attempt - 1)) * random.uniform(0.8, 1.2)
                    job.attempt += 1
                    job.due = time.monotonic() + delay
                    job.seq = next(self._seq)
                    heapq.heappush(self._heap, job)
                    self.stats.retried += 1
                    log.warning("webhook %s for alert %s failed (%s); retry %d in %.1f s",
                                job.url, job.alert_id, err, job.attempt, delay)
                else:
                    self.stats.failed += 1
                    self.stats.last_error = err
                    log.error("webhook %s for alert %s given up after %d attempt(s): %s",
                              job.url, job.alert_id, job.attempt, err)

    def _post(self, job: _Job) -> tuple[bool, bool, str]:
        """(delivered, worth retrying, error)."""
        req = urllib.request.Request(job.url, data=job.body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "segel-gateway",
            SIGNATURE_HEADER: sign(self.secret, job.body, int(time.time())),
            "X-Segel-Alert-Id": job.alert_id, "X-Segel-Attempt": str(job.attempt)})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - configured URLs
                resp.read()
                return True, False, ""
        except urllib.error.HTTPError as e:
            return False, e.code == 429 or e.code >= 500, f"HTTP {e.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            return False, True, f"{type(e).__name__}: {getattr(e, 'reason', e)}"


def on_commit_hook(notifier: WebhookNotifier) -> Callable[[list, float], None]:
    """For `segel.gateway.Gateway(on_commit=...)`: push every alert of a committed batch."""

    def hook(results: list, _committed: float) -> None:
        for r in results:
            for a in getattr(r, "alerts", ()):
                notifier.submit(a)
    return hook
