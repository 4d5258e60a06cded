"""The gateway's ledger checkpoints: sign the changed box chains at an interval and publish them.

The worker calls `Checkpointer.tick(conn, now)` on its timer cadence. Every `checkpoint_interval_s`
it records new pairings in the ledger, signs the head of every box chain that grew
(`segel.custody.checkpoints.make`) and publishes every checkpoint not yet published: one line each
in the append-only file, one webhook delivery per round, and a retained MQTT message per box on
`segel/checkpoints/<box>` (returned for the worker to publish). Without a usable signing key the
gateway says so once, keeps running, and publishes the checkpoints unsigned, marked missing; it
tries the key again every round, so creating it later is enough.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

from segel.config import Config
from segel.custody import checkpoints as cps
from segel.custody import ledger
from segel.edge import topics
from segel.registry import transaction

log = logging.getLogger("segel.service.checkpointer")

Message = tuple[str, bytes, int, bool]  # topic, payload, qos, retain


class Checkpointer:
    def __init__(self, cfg: Config, notifier: object | None = None) -> None:
        c = cfg.custody
        self.instance = cfg.gateway.instance
        self.interval = c.checkpoint_interval_s
        self.key_path = cfg.path(c.signing_key) if c.signing_key else None
        self.file = cfg.path(c.checkpoint_file) if c.checkpoint_file else None
        self.notifier = notifier  # a segel.notify.webhooks.WebhookNotifier, or None
        self.key: cps.SigningKey | None = None
        self.missing: str | None = None
        self.next_at = 0.0
        self.made = 0
        self.judging = bool(c.calendar)
        self._load_key(first=True)

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()  # type: ignore[attr-defined]

    def _load_key(self, first: bool = False) -> None:
        if self.key is not None:
            return
        if self.key_path is None:
            why = "custody.signing_key is not set"
        else:
            try:
                self.key = cps.load_key(self.key_path)
                self.missing = None
                log.info("ledger checkpoints signed with key %s (%s), every %.0f s", self.key.key_id,
                            self.key_path, self.interval)
                return
            except cps.SigningKeyError as e:
                why = str(e)
        if first or why != self.missing:
            # said loudly only where there is a ledger to sign (a gateway with custody rules)
            log.log(logging.ERROR if self.judging else logging.INFO,
                    "ledger checkpoints will be UNSIGNED (marked missing): %s", why)
        self.missing = why

    def tick(self, conn: sqlite3.Connection, now: float, final: bool = False) -> list[Message]:
        """Every interval (and at the end: final=True): checkpoint, then publish. Returns the MQTT
        messages to publish."""
        if not self.interval or (now < self.next_at and not final):
            return []
        self.next_at = now + self.interval
        return self.run(conn, now)

    def run(self, conn: sqlite3.Connection, now: float) -> list[Message]:
        """Checkpoint the changed chains and publish, now."""
        self._load_key()
        with transaction(conn):
            ledger.record_pairings(conn)
            self.made += len(cps.make(conn, self.key, self.instance, now, self.missing))
        return self.publish(conn, now)

    def publish(self, conn: sqlite3.Connection, now: float) -> list[Message]:
        pending = cps.unpublished(conn)
        if not pending:
            return []
        envs = [e for _, e in pending]
        if self.file is not None:
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                with open(self.file, "a", encoding="utf-8") as fh:
                    fh.write("".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in envs))
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as e:
                # kept unpublished: the next round writes them again
                log.error("cannot append ledger checkpoints to %s: %s", self.file, e)
                return []
        if self.notifier is not None:
            self.notifier.submit_document(  # type: ignore[attr-defined]
                {"schema": "segel.checkpoints/1", "instance": self.instance, "checkpoints": envs},
                f"checkpoints-{pending[0][0]}-{pending[-1][0]}")
        with transaction(conn):
            cps.mark_published(conn, [i for i, _ in pending], now)
        latest: dict[str, dict] = {}
        for env in envs:
            latest[json.loads(env["payload"])["box"]] = env
        return [(topics.checkpoint(box), json.dumps(env, sort_keys=True, separators=(",", ":")).encode(), 1, True)
                for box, env in latest.items()]


def from_config(cfg: Config) -> Checkpointer:
    """The checkpointer `[custody]` asks for, with its own webhook notifier when webhooks are set."""
    notifier = None
    c = cfg.custody
    if c.webhook_urls and c.webhook_secret and c.checkpoint_interval_s:
        from segel.notify.webhooks import WebhookNotifier

        notifier = WebhookNotifier(c.webhook_urls, c.webhook_secret.encode()).start()
    return Checkpointer(cfg, notifier)


def file_path(cfg: Config) -> Path | None:
    return cfg.path(cfg.custody.checkpoint_file) if cfg.custody.checkpoint_file else None
