"""`segel deploy ...`: files for a production deployment (broker accounts, ACL, config)."""

from __future__ import annotations

from pathlib import Path

import click

from segel.deploy import mosquitto as deploy
from segel.ids import parse_device
from segel.registry import Registry, RegistryError, load_fleet_secret
from segel.store import connect

DB_HELP = "The gateway database holding the registry (default: gateway.db of --config, else segel.db)."
SECRET_HELP = "The fleet secret file (default: gateway.fleet_secret of --config, else fleet.key)."
CONFIG_HELP = "The gateway's config file: take the database and fleet secret paths from it."


def _paths(config_path: Path | None, db: Path | None, secret: Path | None) -> tuple[Path, Path]:
    from segel import config as gwconfig

    try:
        cfg = gwconfig.load(config_path)
    except gwconfig.ConfigError as e:
        raise click.ClickException(str(e)) from e
    return (db or cfg.path(cfg.gateway.db), secret or cfg.path(cfg.gateway.fleet_secret))


def _open(db: Path, secret: Path) -> tuple[Registry, bytes]:
    if not db.exists():
        raise click.ClickException(f"registry {db} not found: register trackers first (segel provision) or pass --db")
    try:
        fleet_secret = load_fleet_secret(secret)
    except RegistryError as e:
        raise click.ClickException(str(e)) from e
    return Registry(connect(db)), fleet_secret


def register(group: click.Group) -> None:
    from segel.commands._common import subgroup

    grp = subgroup(group, "deploy", "Files for running Segel on real servers (broker accounts, ACLs, config).")

    @grp.command("mosquitto")
    @click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
                  help="Folder to write mosquitto.conf, passwd, acl and credentials.json into.")
    @click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help=CONFIG_HELP)
    @click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help=DB_HELP)
    @click.option("--fleet-secret", "secret", type=click.Path(dir_okay=False, path_type=Path), help=SECRET_HELP)
    @click.option("--bridge", "bridges", multiple=True, metavar="ID",
                  help="A LoRa bridge id (its MQTT username and topic level); repeat for each bridge.")
    @click.option("--gateway-user", default=deploy.DEFAULT_GATEWAY, show_default=True,
                  help="The gateway's MQTT username.")
    @click.option("--consumer", "consumers", multiple=True, metavar="NAME",
                  help="A read-only consumer of alerts and status (dashboards, notifiers); "
                       "repeat. Default: segel-dashboard.")
    @click.option("--rotate", multiple=True, metavar="NAME", help="Issue a new password for this service account.")
    @click.option("--conf-dir", default=deploy.MosquittoSettings.conf_dir, show_default=True,
                  help="Where mosquitto.conf will find passwd, acl and the TLS files on the broker host.")
    @click.option("--persistence-dir", default=deploy.MosquittoSettings.persistence_dir, show_default=True,
                  help="Where Mosquitto keeps its persistent sessions.")
    @click.option("--tls-port", default=8883, show_default=True, help="The TLS listener's port (all interfaces).")
    @click.option("--plain-port", default=1883, show_default=True, help="The plain listener's port (loopback only).")
    @click.option("--depot-listener", default="", metavar="ADDR:PORT",
                  help="Also accept plain MQTT on this one depot LAN address (trackers on depot WiFi without TLS).")
    def mosquitto_cmd(out: Path, config_path: Path | None, db: Path | None, secret: Path | None, bridges: tuple[str, ...], gateway_user: str,
                      consumers: tuple[str, ...], rotate: tuple[str, ...], conf_dir: str, persistence_dir: str,
                      tls_port: int, plain_port: int, depot_listener: str) -> None:
        """Generate the broker's accounts and ACL from the registry.

        Every registered tracker gets an account named by its device id that may publish only
        segel/up/<id> and read only segel/down/<id>; each --bridge only its own bridge topics; the
        gateway reads uplinks and writes downlinks and alerts; consumers only read alerts and
        status. Service passwords are kept in OUT/credentials.json (mode 600) and reused on the
        next run; tracker passwords derive from each tracker's key (see `segel deploy
        tracker-password`). Re-run after provisioning and reload Mosquitto (kill -HUP).

        \b
        Example:
          segel deploy mosquitto --config /etc/segel/segel.toml --out /etc/mosquitto/segel \\
              --bridge ppk-sangatta --bridge ppk-bengalon
          chgrp mosquitto /etc/mosquitto/segel/passwd /etc/mosquitto/segel/acl
          systemctl reload mosquitto
        """
        registry, fleet_secret = _open(*_paths(config_path, db, secret))
        settings = deploy.MosquittoSettings(conf_dir=conf_dir, persistence_dir=persistence_dir,
                                            tls_port=tls_port, plain_port=plain_port, depot_listener=depot_listener)
        try:
            written = deploy.write_mosquitto(out, registry, fleet_secret, settings, bridges, gateway_user,
                                             consumers or deploy.DEFAULT_CONSUMERS, rotate)
        except deploy.DeployError as e:
            raise click.ClickException(str(e)) from e
        counts: dict[str, int] = {}
        for a in written.accounts:
            counts[a.role] = counts.get(a.role, 0) + 1
        click.echo(f"{len(written.accounts)} accounts: " + ", ".join(f"{n} {r}" for r, n in sorted(counts.items())))
        for f in written.files:
            click.echo(f"wrote {f}")
        click.echo(f"service passwords: {out / 'credentials.json'} (keep it private); TLS files expected in {conf_dir}")

    @grp.command("tracker-password")
    @click.argument("device")
    @click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help=CONFIG_HELP)
    @click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help=DB_HELP)
    @click.option("--fleet-secret", "secret", type=click.Path(dir_okay=False, path_type=Path), help=SECRET_HELP)
    def tracker_password_cmd(device: str, config_path: Path | None, db: Path | None, secret: Path | None) -> None:
        """Print the MQTT password of tracker DEVICE (for its wifi.mqtt_password setting).

        It is derived from the tracker's current key, so it changes when the tracker is re-imaged
        with a new key epoch.

        \b
        Example:
          segel deploy tracker-password --config /etc/segel/segel.toml 000101
        """
        registry, fleet_secret = _open(*_paths(config_path, db, secret))
        try:
            dev_id = parse_device(device)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="DEVICE") from e
        dev = registry.get(dev_id)
        if dev is None:
            raise click.ClickException(f"device {device} is not registered")
        click.echo(deploy.tracker_password(fleet_secret, dev.device_id, dev.key_epoch))

    @grp.command("federation")
    @click.option("--spec", "spec_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
                  help="The federation spec (TOML): national nodes, store, regencies (inline or a CSV).")
    @click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
                  help="Folder to write the national and regency files into.")
    @click.option("--rotate", multiple=True, metavar="NAME",
                  help="Issue a new password for this account (a regency code, segel-ingest, postgres); repeat.")
    @click.option("--bcrypt-cost", type=click.IntRange(4, 14), default=10, show_default=True,
                  help="bcrypt cost of the password hashes in nats-server.conf (each step doubles the work).")
    def federation_cmd(spec_path: Path, out: Path, rotate: tuple[str, ...], bcrypt_cost: int) -> None:
        """Generate a national deployment: NATS cluster, ingesters, store, every regency's uplink.

        From a list of regencies (BPS/Kemendagri codes such as 64.08) and national hosts: per
        national node a nats-server.conf (cluster routes, JetStream, MQTT over TLS, an account per
        regency that may publish only under its own code) and the ingesters' ingest-<k>.toml; the
        systemd units; the PostgreSQL setup; per regency the [national] section of its gateway's
        segel.toml. Passwords are kept in OUT/credentials.json (mode 600) and reused on the next run,
        so adding a regency changes nothing for the others. See docs/national.md.

        \b
        Example:
          segel deploy federation --spec federation.toml --out deploy/national
          scp deploy/national/national/nasional-1/* nasional-1:/etc/segel/national/
          cat deploy/national/regency/6408/national.toml >> /etc/segel/segel.toml   # on Kutai Timur's gateway
        """
        from segel.national import federation

        try:
            spec = federation.load_spec(spec_path)
        except federation.FederationError as e:
            raise click.ClickException(str(e)) from None
        import sys

        with click.progressbar(length=len(spec.regencies) + 1, label="hashing passwords", file=sys.stderr,
                               show_pos=True) as bar:
            done = [0]

            def step(i: int, n: int) -> None:
                bar.update(i - done[0])
                done[0] = i

            try:
                written = federation.write(spec, out, rotate, bcrypt_cost, progress=step)
            except federation.FederationError as e:
                raise click.ClickException(str(e)) from None
        click.echo(f"{len(spec.nodes)} national nodes, {len(spec.regencies)} regencies, {written.accounts} accounts")
        click.echo(f"wrote {len(written.files)} files under {out} (start with {out / 'README.md'}); "
                   f"passwords in {out / 'credentials.json'}: keep it private")
