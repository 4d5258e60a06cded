"""`segel fleet init|show`: the fleet secret and the settings every tracker gets."""

from __future__ import annotations

import click

from segel.commands._common import subgroup
from segel.commands import _provisioning as shared
from segel.provision.settings import FleetSettings, init_fleet


@click.command("init")
@shared.fleet_options
@click.option("--board", default="tbeam-v1.1", show_default=True, help="Default board for `segel provision`.")
@click.option("--region", default="AS923-2", show_default=True, help="LoRa region preset: AS923-2, Indonesia's 920-923 MHz plan (the only one; hardware/radio.md).")
@click.option("--sf", type=int, default=10, show_default=True, help="LoRa spreading factor (7-10 under dwell).")
@click.option("--channel", default="random", show_default=True,
              help='"random" over the region\'s channels, or one frequency in kHz (single-channel base station).')
@click.option("--tx-power", "tx_power", type=int, default=14, show_default=True, help="Transmit power, dBm.")
@click.option("--report-interval", type=int, default=300, show_default=True, help="Seconds between reports.")
@click.option("--fix-timeout", type=int, default=60, show_default=True, help="Seconds to wait for a GNSS fix.")
@click.option("--status-interval", type=int, default=3600, show_default=True, help="Seconds between status frames.")
@click.option("--wifi-ssid", default=None, help="Depot WiFi network (trackers report over WiFi/MQTT there).")
@click.option("--wifi-password", default="", help="Depot WiFi password (stored in fleet.toml and device configs).")
@click.option("--mqtt-host", default=None, help="MQTT broker host reachable from the depot WiFi.")
@click.option("--mqtt-port", type=int, default=1883, show_default=True, help="MQTT broker port.")
@click.option("--micropython", default="1.27", show_default=True,
              help="MicroPython release flashed on the trackers (fixes the .mpy version).")
@shared.handles_errors
def init_cmd(fleet_dir: str | None, db: str | None, board: str, region: str, sf: int, channel: str, tx_power: int,
             report_interval: int, fix_timeout: int, status_interval: int, wifi_ssid: str | None,
             wifi_password: str, mqtt_host: str | None, mqtt_port: int, micropython: str) -> None:
    """Create the fleet folder: the fleet secret (mode 600) and fleet.toml.

    \b
    Examples:
      segel fleet init
      segel fleet init --fleet /srv/segel/fleet --sf 9
      segel fleet init --wifi-ssid KPU-Depot --wifi-password '...' --mqtt-host 10.0.0.2

    The secret is never printed; every device key derives from it. Keep a backup offline: losing
    it means re-flashing every tracker."""
    ch: str | int = int(channel) if channel.isdigit() else channel
    s = FleetSettings(
        radio={"region": region, "sf": sf, "channel": ch, "tx_power_dbm": tx_power},
        intervals={"report_interval_s": report_interval, "fix_timeout_s": fix_timeout,
                   "status_interval_s": status_interval},
        board=board, micropython=micropython)
    if wifi_ssid or mqtt_host:
        if not (wifi_ssid and mqtt_host):
            raise click.UsageError("--wifi-ssid and --mqtt-host go together")
        s.wifi = {"ssid": wifi_ssid, "password": wifi_password, "host": mqtt_host, "port": mqtt_port}
    if db:
        s.registry_path = db
    fleet = init_fleet(shared.fleet_of(fleet_dir).root, s)
    click.echo(f"fleet secret  {fleet.secret_path} (mode 600; back it up offline)")
    click.echo(f"settings      {fleet.settings_path}")
    click.echo(f"registry      {fleet.registry_db()}")
    click.echo("next: segel packages fetch (online), then segel provision --count N")


@click.command("show")
@shared.fleet_options
@shared.handles_errors
def show_cmd(fleet_dir: str | None, db: str | None) -> None:
    """Show where the fleet's files are and how many trackers it has (never the secret).

    \b
    Example:
      segel fleet show --fleet ./fleet"""
    from segel.provision import packages

    fleet = shared.fleet_of(fleet_dir)
    s = fleet.settings()
    devices = fleet.open_registry(db).devices()
    click.echo(f"settings      {fleet.settings_path}")
    from segel import registry as reg

    registry = fleet.open_registry(db)
    have = reg.secret_fingerprint(fleet.secret()) if fleet.secret_path.is_file() else "MISSING"
    want = reg.stored_fingerprint(registry.conn) or "none recorded"
    agree = "" if want in (have, "none recorded") else "  <- DIFFERENT: this secret is not the registry's"
    click.echo(f"secret        {fleet.secret_path} (fingerprint {have})")
    click.echo(f"registry      {fleet.registry_db(db)}: {len(devices)} devices (made with fingerprint {want}){agree}")
    click.echo(f"radio         {s.radio}")
    click.echo(f"intervals     {s.intervals}")
    click.echo(f"wifi          {'configured' if s.wifi else 'none (LoRa only)'}")
    click.echo(f"micropython   {s.micropython}")
    click.echo(f"packages      {', '.join(n for _, n, _ in packages.cached(fleet.package_cache)) or 'none cached'}")


def register(group: click.Group) -> None:
    g = subgroup(group, "fleet", "The fleet secret and the settings every tracker gets.")
    g.add_command(init_cmd)
    g.add_command(show_cmd)
