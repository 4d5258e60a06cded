"""`segel replay RECORDING`: run recorded uplinks through the full pipeline offline."""

from __future__ import annotations

import json
from pathlib import Path

import click


def register(group: click.Group) -> None:
    @group.command("replay", epilog="""\b
Examples:
  segel replay recordings/ --places places.csv --places corridors.geojson \\
      --boxes boxes.csv --calendar calendar.toml --fleet-secret fleet.key --json
  segel replay uplinks.jsonl --registry segel.db --places places.csv --calendar calendar.toml
  segel replay recordings/ ... --db day1.db        keep the replay's database for inspection
\b
RECORDING is a recording directory (uplinks.jsonl and its rotations, oldest first) or one .jsonl
file. Nothing is sent anywhere: a fresh SQLite database (temporary unless --db) gets the places,
the boxes (devices named in the boxes file are registered unless --no-register), or the
registry of an existing gateway database (--registry, opened read-only), and every uplink goes
through verify, dedupe, decode and the custody rules; timers (silent, behind schedule) run on
the recording's clock. Every alert change is printed, one JSON object per line with --json
(kind, severity, box, device, place, device_time, raised_at, late, state, event, id ...:
docs/alerts.md). Useful for forensics and for re-running a day with new rules.""")
    @click.argument("recording_path", metavar="RECORDING", type=click.Path(exists=True, path_type=Path))
    @click.option("--places", "places", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Places/corridors file (CSV or GeoJSON); repeat for several.")
    @click.option("--boxes", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Boxes CSV.")
    @click.option("--calendar", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Election calendar (TOML).")
    @click.option("--fleet-secret", "secret", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  default="fleet.key", show_default=True, help="The fleet secret the trackers' keys derive from.")
    @click.option("--registry", "registry_db", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Take devices, boxes and pairings from this gateway database (read-only).")
    @click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Write the replay's database here (new file).")
    @click.option("--no-register", is_flag=True, help="Refuse devices in the boxes file that are not registered.")
    @click.option("--assign-devices", "assign", is_flag=True, help="Give boxes without a device a new one (as the demo does).")
    @click.option("--tick", "tick_every", default=60.0, show_default=True, type=click.FloatRange(min=0),
                  help="Run the timers every this many seconds of recorded time (0 = never).")
    @click.option("--set", "sets", multiple=True, metavar="RULE=VALUE", help="Override a rule setting, e.g. stop_minutes=20.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per alert change.")
    def replay_cmd(recording_path: Path, places: tuple[Path, ...], boxes: Path | None, calendar: Path | None, secret: Path,
                   registry_db: Path | None, db: Path | None, no_register: bool, assign: bool, tick_every: float,
                   sets: tuple[str, ...], as_json: bool) -> None:
        """Replay a recording offline and print every alert."""
        from segel.custody.boxes import BoxesError
        from segel.custody.plan import DEFAULT_RULES, CalendarError, PlanError
        from segel.places.io import ImportErrors
        from segel.recording.replay import ReplayError, replay
        from segel.registry import RegistryError, load_fleet_secret

        settings: dict[str, float] = {}
        for s in sets:
            k, _, v = s.partition("=")
            if k not in DEFAULT_RULES:
                raise click.BadParameter(f"unknown rule setting {k!r}; known: {', '.join(DEFAULT_RULES)}", param_hint="--set")
            try:
                settings[k] = float(v)
            except ValueError:
                raise click.BadParameter(f"{s!r}: the value must be a number", param_hint="--set") from None
        try:
            fleet_secret = load_fleet_secret(secret)
            n = 0
            for alert in replay(recording_path, fleet_secret, places=places, boxes=boxes, calendar=calendar,
                                settings=settings, db=db, registry_db=registry_db, register=not no_register,
                                assign=assign, tick_every=tick_every):
                n += 1
                if as_json:
                    click.echo(json.dumps(alert, separators=(",", ":")))
                else:
                    late = " LATE" if alert["late"] else ""
                    click.echo(f"{alert['raised_at']} {alert['event']:<10} {alert['severity']:<8} {alert['kind']:<18} "
                               f"{alert['box'] or alert['device'] or '-':<24} {alert['place'] or '-':<18} "
                               f"device time {alert['device_time'] or '-'}{late}")
        except ImportErrors as e:
            raise click.ClickException("places:\n" + str(e)) from None
        except (BoxesError, CalendarError, PlanError, ReplayError, RegistryError) as e:
            raise click.ClickException(str(e)) from None
        if not as_json:
            click.echo(f"{n} alert change(s)", err=True)
