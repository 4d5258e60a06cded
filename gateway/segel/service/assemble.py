"""Assemble the gateway service from its configuration: the custody judge and alert notifiers.

`segel gateway` calls `assemble(cfg)`; tests call it the same way. Kept apart from
`segel.service.gateway` so the ingest core does not depend on places, plans or webhooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from segel import store
from segel.config import Config, ConfigError
from segel.messages import Judge

log = logging.getLogger("segel.service.assemble")


@dataclass
class Assembly:
    judges: list[Judge] = field(default_factory=list)
    on_alerts: Callable[[list[dict]], None] | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    summary: str = "no custody rules (custody.calendar not set)"
    warnings: list[str] = field(default_factory=list)

    def close(self) -> None:
        for c in self.closers:
            c()


def assemble(cfg: Config) -> Assembly:
    """The judges and alert hooks `[custody]` asks for. Imports places and pairs boxes first
    (all or nothing); raises ConfigError naming the key when a file or value is wrong."""
    c = cfg.custody
    out = Assembly()
    if not c.calendar:
        if c.places or c.boxes:
            raise ConfigError("custody.calendar", "places/boxes are set but no calendar: the rules need one",
                              cfg.source)
        if c.webhook_urls:
            raise ConfigError("custody.webhook_urls", "webhooks deliver custody alerts: set custody.calendar too",
                              cfg.source)
        if cfg.notify.smtp_host:
            raise ConfigError("notify.smtp_host", "email delivers custody alerts: set custody.calendar too", cfg.source)
        return out
    from segel.custody import build_judge
    from segel.notify.webhooks import WebhookNotifier

    conn = store.connect(cfg.path(cfg.gateway.db))
    settings = {"report_interval_s": c.report_interval_s} if c.report_interval_s else None
    try:
        judge = build_judge(conn, places=[cfg.path(p) for p in c.places] or None,
                            boxes=cfg.path(c.boxes) if c.boxes else None, calendar=cfg.path(c.calendar),
                            settings=settings)
    except FileNotFoundError as e:
        raise ConfigError("custody", f"file not found: {e.filename}", cfg.source) from None
    except ValueError as e:  # places.io.ImportErrors, calendar and boxes errors are ValueErrors
        raise ConfigError("custody", str(e), cfg.source) from None
    finally:
        conn.close()
    out.judges.append(judge)
    out.summary = (f"custody rules on: {len(judge.index)} places, {len(judge.plans)} box plans, "
                   f"report interval {judge.settings['report_interval_s']:.0f} s")
    warning = _interval_warning(cfg)
    if warning:
        log.warning("%s", warning)
        out.warnings.append(warning)
        out.summary += " (NOT the fleet's: see the warning)"
    if judge.pairing_problems:
        out.summary += (f"; {len(judge.pairing_problems)} box(es) WITHOUT a plan (invalid pairing: "
                        f"{', '.join(sorted(judge.pairing_problems)[:5])}; see the log and the invalid_pairing alerts)")
    pushes: list[Callable[[dict], object]] = []
    if cfg.notify.smtp_host:
        from segel.notify.email import EmailNotifier, SmtpSettings

        n = cfg.notify
        try:
            mailer = EmailNotifier(cfg.path(cfg.gateway.db), SmtpSettings(
                n.smtp_host, n.smtp_port, n.smtp_security, n.smtp_username, n.smtp_password, n.email_from),
                min_severity=n.email_min_severity, language=cfg.locale.language, timezone=cfg.locale.timezone,
                console_url=n.console_url).start()
        except ValueError as e:
            raise ConfigError("notify", str(e), cfg.source) from None
        pushes.append(mailer.submit)
        out.closers.append(mailer.stop)
        out.summary += f"; email via {n.smtp_host}:{n.smtp_port} ({n.email_min_severity} and above)"
    if c.webhook_urls:
        if not c.webhook_secret:
            raise ConfigError("custody.webhook_secret", "needed to sign webhook deliveries "
                              "(or set SEGEL_CUSTODY_WEBHOOK_SECRET)", cfg.source)
        try:
            from segel.notify import templates

            if c.webhook_template in ("telegram", "whatsapp") and not c.webhook_chat_id:
                raise ConfigError("custody.webhook_chat_id", f"the {c.webhook_template} template needs the chat or "
                                  "recipient it sends to", cfg.source)
            names = {code: p.name for code, p in judge.index.places.items()}  # places by name in chat messages
            render = None if c.webhook_template == "segel" else (
                lambda a: templates.render(c.webhook_template, a, language=cfg.locale.language,
                                           timezone=cfg.locale.timezone, chat_id=c.webhook_chat_id, names=names))
            notifier = WebhookNotifier(c.webhook_urls, c.webhook_secret.encode(),
                                       min_severity=c.webhook_min_severity or None, render=render).start()
        except ValueError as e:
            raise ConfigError("custody.webhook_urls", str(e), cfg.source) from None

        pushes.append(notifier.submit)
        out.closers.append(notifier.stop)
        out.summary += f"; webhooks to {len(c.webhook_urls)} URL(s)"
    if pushes:
        def push(alerts: list[dict]) -> None:
            for a in alerts:
                for p in pushes:
                    p(a)

        out.on_alerts = push
    return out


def _interval_warning(cfg: Config) -> str | None:
    """A calendar whose [rules] report_interval_s is not the fleet's (fleet.toml, recorded in the
    registry at provisioning) decides when a box is called silent: too short floods the command
    post with silent alerts, too long hides a box that went quiet. Said once at start."""
    from segel import registry
    from segel.custody.plan import load_calendar

    c = cfg.custody
    if c.report_interval_s:
        return None  # set on purpose in the gateway's config
    cal = load_calendar(cfg.path(c.calendar))
    cal_iv = cal.rules.get("report_interval_s")
    conn = store.connect(cfg.path(cfg.gateway.db))
    try:
        fleet_iv = registry.get_meta(conn, registry.FLEET_INTERVAL_KEY)
    finally:
        conn.close()
    if cal_iv is None or fleet_iv is None or abs(float(fleet_iv) - float(cal_iv)) < 1:
        return None
    n = cal.rules.get("silent_after_intervals", 3)
    return (f"the calendar {c.calendar} sets [rules] report_interval_s = {cal_iv:.0f} s, but the fleet's trackers "
            f"report every {float(fleet_iv):.0f} s (fleet.toml, as provisioned): the silent rule fires after "
            f"{n * cal_iv / 60:.0f} min instead of {n * float(fleet_iv) / 60:.0f} min. Set custody.report_interval_s = "
            f"{float(fleet_iv):.0f} in the gateway's config, or fix the calendar")

