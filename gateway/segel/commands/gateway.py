"""`segel gateway`: run the ingest service."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click

from segel import config as cfgmod
from segel.registry import RegistryError

log = logging.getLogger("segel.service.gateway")


def register(group: click.Group) -> None:
    @group.command("gateway", epilog="""\b
Examples:
  segel gateway --config segel.toml
  segel gateway --config segel.toml --mqtt-url mqtts://broker.example:8883 --metrics-port 9108
  SEGEL_MQTT_PASSWORD=... SEGEL_INFLUX_TOKEN=... segel gateway --config segel.toml
  segel gateway --print-example-config > segel.toml
  SEGEL_CONSOLE_ENABLED=true segel gateway --config segel.toml    also serve the operator's console

\b
Settings come from the TOML file, then SEGEL_<SECTION>_<KEY> environment variables, then these
flags (docs/configuration.md). Stop with Ctrl-C or SIGTERM: messages not yet committed are not
acknowledged, so the broker delivers them again on the next start.""")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="TOML config file (docs/configuration.md).")
    @click.option("--db", help="SQLite database (gateway.db).")
    @click.option("--fleet-secret", help="Fleet secret file (gateway.fleet_secret).")
    @click.option("--mqtt-url", help="Broker URL, mqtt://host:1883 or mqtts://host:8883 (mqtt.url).")
    @click.option("--client-id", help="Stable MQTT client id (mqtt.client_id).")
    @click.option("--influx-kind", type=click.Choice(["none", "v1", "v2"]), help="InfluxDB API (influx.kind).")
    @click.option("--influx-url", help="InfluxDB URL (influx.url).")
    @click.option("--metrics-port", type=int, help="Prometheus /metrics port, 0 = off (gateway.metrics_port).")
    @click.option("--print-example-config", is_flag=True, help="Print a commented example config and exit.")
    def gateway_cmd(config_path: Path | None, db: str | None, fleet_secret: str | None, mqtt_url: str | None,
                    client_id: str | None, influx_kind: str | None, influx_url: str | None,
                    metrics_port: int | None, print_example_config: bool) -> None:
        """Run the gateway: verify uplinks from MQTT, store them, acknowledge, write to InfluxDB."""
        if print_example_config:
            click.echo(cfgmod.EXAMPLE, nl=False)
            return
        import sys

        from segel.service.gateway import GATEWAY_SWITCH_INTERVAL_S, Gateway

        sys.setswitchinterval(GATEWAY_SWITCH_INTERVAL_S)

        try:
            cfg = cfgmod.load(config_path, overrides={
                "gateway.db": db, "gateway.fleet_secret": fleet_secret, "mqtt.url": mqtt_url,
                "mqtt.client_id": client_id, "influx.kind": influx_kind, "influx.url": influx_url,
                "gateway.metrics_port": metrics_port})
        except cfgmod.ConfigError as e:
            raise click.ClickException(str(e)) from None
        logging.getLogger("segel").setLevel(min(logging.getLogger().level, logging.INFO))
        log.info("configuration (%s): %s", cfg.source, cfg.redacted())
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        from segel.service.assemble import assemble

        from segel.national import uplink as national

        try:
            parts = assemble(cfg)
            # before the gateway starts: from its first commit, what the nation needs is recorded
            up = national.start(cfg)
            gw = Gateway(cfg, judges=parts.judges, on_alerts=parts.on_alerts).start()
        except (RegistryError, ValueError, OSError) as e:  # ConfigError is a ValueError
            raise click.ClickException(str(e)) from None
        log.info("%s", parts.summary)
        if up is not None:
            parts.summary += f"; national uplink for {up.code} to {len(up.nodes)} node(s)"
        console = None
        if cfg.console.enabled:  # the operator's console in this process ([console] enabled = true)
            from segel.console import live
            from segel.console.server import ConsoleServer

            try:
                console = ConsoleServer(cfg, hooks=[live.attach]).start()
            except OSError as e:
                gw.stop()
                if up is not None:
                    up.stop()
                parts.close()
                raise click.ClickException(f"console.port: {e}") from None
        click.echo(f"segel gateway {cfg.gateway.instance} running (database {cfg.path(cfg.gateway.db)}; "
                   f"{parts.summary})" + (f"; console on {console.url}" if console else "") + "; Ctrl-C to stop",
                   err=True)
        stop.wait()
        if console is not None:
            console.stop()
        gw.stop()
        if up is not None:
            up.stop()
        parts.close()
