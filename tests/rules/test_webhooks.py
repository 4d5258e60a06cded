"""Webhooks against a real HTTP server on loopback: signature, retry with backoff, no blocking."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
from segel.notify.webhooks import (
    SIGNATURE_HEADER,
    WebhookNotifier,
    sign,
    verify_signature,
)

SECRET = b"shared webhook secret"


class Receiver:
    def __init__(self, answers: list[int], delay_s: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay_s = delay_s
        self.requests: list[tuple[float, dict, bytes]] = []
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recv.requests.append((time.monotonic(), dict(self.headers), body))
                time.sleep(recv.delay_s)
                code = recv.answers.pop(0) if recv.answers else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([500, 503])
    yield r
    r.close()


def wait_for(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


ALERT = {"id": "AL-0123456789ab", "kind": "seal_unauthorised", "severity": "critical", "box": "B1"}


def test_signed_delivery_retried_with_backoff(receiver):
    n = WebhookNotifier([receiver.url], SECRET, backoff_s=0.2).start()
    try:
        assert n.submit(ALERT)
        wait_for(lambda: n.stats.delivered == 1)
    finally:
        n.stop()
    assert len(receiver.requests) == 3 and n.stats.retried == 2
    times = [r[0] for r in receiver.requests]
    assert times[1] - times[0] >= 0.15 and times[2] - times[1] >= 0.3  # 0.2 s, then 0.4 s (±20 %)
    for _t, headers, body in receiver.requests:
        assert json.loads(body) == ALERT
        assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body)
        assert not verify_signature(b"wrong secret", headers[SIGNATURE_HEADER], body)
        assert not verify_signature(SECRET, headers[SIGNATURE_HEADER], body.replace(b"B1", b"B2"))
    assert [h["X-Segel-Attempt"] for _t, h, _b in receiver.requests] == ["1", "2", "3"]


def test_a_stale_signature_is_refused():
    body = b'{"id":"x"}'
    old = int(time.time()) - 3600
    assert not verify_signature(SECRET, sign(SECRET, body, old), body)
    assert verify_signature(SECRET, sign(SECRET, body, old), body, now=old + 10)


def test_client_error_is_not_retried_and_submit_never_blocks():
    slow = Receiver([400], delay_s=0.5)
    n = WebhookNotifier([slow.url], SECRET, backoff_s=0.05).start()
    try:
        t0 = time.monotonic()
        for i in range(50):
            assert n.submit({**ALERT, "id": f"AL-{i}"})
        assert time.monotonic() - t0 < 1.0  # 50 deliveries take the receiver 25 s; ingest does not wait
        wait_for(lambda: n.stats.failed == 1 and n.stats.delivered >= 1, timeout=5)
    finally:
        n.stop()
        slow.close()
    first = [h for _t, h, _b in slow.requests if h["X-Segel-Alert-Id"] == "AL-0"]
    assert len(first) == 1 and n.stats.retried == 0  # the 400 was not retried


def test_unreachable_endpoint_gives_up_after_max_attempts():
    r = Receiver([])
    url = r.url
    r.close()  # nothing listens there now
    n = WebhookNotifier([url], SECRET, backoff_s=0.01, max_attempts=3).start()
    try:
        n.submit(ALERT)
        wait_for(lambda: n.stats.failed == 1)
    finally:
        n.stop()
    assert n.stats.retried == 2 and n.stats.delivered == 0
