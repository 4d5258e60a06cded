"""`segel bridge`: LoRa base station (USB serial) or packet-forwarder gateways (UDP) to the broker."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path

import click

from segel.ids import NAME_ALPHABET, is_name

HELP = """Carry LoRa uplinks from the air to the broker, and downlinks back.

\b
Serial mode: a T-Beam running the firmware in the base role, on USB:
  segel bridge --list-ports                                   find the board
  segel bridge --port /dev/ttyUSB0 --broker mqtt://127.0.0.1:1883
  segel bridge --port /dev/ttyACM0 --id hill-2 --broker mqtt://gw:pw@10.0.0.5
  segel bridge --port /dev/ttyUSB0 --broker mqtts://bridge:pw@broker.example:8883 --ca-file ca.pem
\b
UDP mode: 8-channel LoRaWAN gateways (RAK, Dragino...) running Semtech's packet forwarder,
with server_address = this host and serv_port_up/down = 1700 in their global_conf.json:
  segel bridge --udp 0.0.0.0:1700 --broker mqtt://127.0.0.1:1883
  segel bridge --udp 0.0.0.0:1700 --gateway aa555a0000000101 --gateway aa555a0000000102
\b
Uplinks go to segel/bridge/<id>/up (QoS 1) through a durable buffer on disk: a broker outage
delays them, never drops them. Health is retained on segel/bridge/<id>/status. Downlinks come
from segel/bridge/<id>/down. Pulling the USB cable is fine: the port is reopened when it is back.
See docs/bridge.md.
"""


def _state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "segel"


def register(group: click.Group) -> None:
    @group.command("bridge", help=HELP)
    @click.option("--port", "port", metavar="PORT", help="Serial port of the base station (or a pyserial URL).")
    @click.option("--udp", "udp", metavar="HOST:PORT", help="Listen for Semtech packet forwarders, e.g. 0.0.0.0:1700.")
    @click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True,
                  help="Broker URL mqtt://[user:pass@]host[:1883], or mqtts://…[:8883] for TLS (certificate verified).")
    @click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
                  help="With mqtts://: the CA that signed the broker's certificate (default: the system's CAs).")
    @click.option("--id", "bridge_id", metavar="ID", help="Bridge id in topics (default: from the port name, or udp-PORT).")
    @click.option("--buffer", "buffer_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Durable buffer file (default: ~/.local/state/segel/bridge-<id>.sqlite).")
    @click.option("--baud", default=115200, show_default=True, help="Serial speed.")
    @click.option("--gateway", "gateways", multiple=True, metavar="EUI",
                  help="UDP mode: accept only these gateway EUIs (16 hex digits); repeat. Default: any.")
    @click.option("--list-ports", is_flag=True, help="List candidate serial ports and exit.")
    @click.option("--json", "as_json", is_flag=True, help="With --list-ports: print JSON.")
    def bridge_cmd(port: str | None, udp: str | None, broker: str, ca_file: str | None, bridge_id: str | None, buffer_path: Path | None, baud: int,
                   gateways: tuple[str, ...], list_ports: bool, as_json: bool) -> None:
        from segel.bridge import Bridge
        from segel.bridge import list_ports as lp
        from segel.edge.mqtt import redact

        if list_ports:
            ports = lp()
            if as_json:
                click.echo(json.dumps(ports, indent=2))
            elif not ports:
                click.echo("No serial ports found. Plug the base station in (USB), then run this again.")
            else:
                for p in ports:
                    click.echo(f"{p['device']:<20} {p['vid_pid'] or '-':<10} {p['description']}")
            return
        if (port is None) == (udp is None):
            raise click.UsageError("give --port PORT (a base station) or --udp HOST:PORT (packet forwarders); see --help")
        for g in gateways:
            if not re.fullmatch(r"[0-9a-fA-F]{16}", g):
                raise click.BadParameter(f"{g!r} is not a gateway EUI (16 hex digits)", param_hint="--gateway")
        if bridge_id is None:
            bridge_id = re.sub(r"[^A-Za-z0-9_-]", "-", Path(port).name) if port else f"udp-{udp.rpartition(':')[2]}"  # type: ignore[union-attr]
        if not is_name(bridge_id):
            raise click.BadParameter(f"{bridge_id!r}: use {NAME_ALPHABET} (it is an MQTT topic level and an "
                                     "InfluxDB tag)", param_hint="--id")
        path = buffer_path or _state_dir() / f"bridge-{bridge_id}.sqlite"
        try:
            b = Bridge(bridge_id, broker, path, port=port, udp=udp, baudrate=baud, gateways=set(gateways) or None,
                       ca_file=ca_file)
        except (ValueError, OSError) as e:
            raise click.ClickException(str(e)) from e
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        b.start()
        where = f"serial {port}" if port else f"UDP {udp}"
        click.echo(f"bridge {bridge_id}: {where} -> {redact(broker)} (buffer {path}); Ctrl-C to stop", err=True)
        try:
            while not done.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            b.stop()
