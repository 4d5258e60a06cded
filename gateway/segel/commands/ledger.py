"""`segel ledger export|verify|checkpoint` and `segel verify BUNDLE`: the custody ledger for oversight."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from segel.commands._common import CONFIG_HELP, DB_HELP, subgroup

EXIT_INVALID, EXIT_UNSIGNED = 1, 3


def _custody(config_path: Path | None, db: str | None, key: Path | None = None, need_key: bool = False):  # type: ignore[no-untyped-def]
    from segel.report.context import ContextError, open_custody

    try:
        return open_custody(config_path, db, key=key, need_key=need_key)
    except ContextError as e:
        raise click.ClickException(str(e)) from None


def _options(fn):  # type: ignore[no-untyped-def]
    fn = click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
                      help="The signing key (default: the config's custody.signing_key).")(fn)
    fn = click.option("--db", help=DB_HELP)(fn)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help=CONFIG_HELP)(fn)


def _read_checkpoints(path: Path) -> list[dict]:
    """Checkpoint envelopes from a published file (JSON lines), or from a webhook archive."""
    out: list[dict] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as e:
            raise click.ClickException(f"{path}:{n}: not JSON ({e.msg})") from None
        out += doc.get("checkpoints", []) if isinstance(doc, dict) and "checkpoints" in doc else [doc]
    return out


def _language(lang: str | None, config_path: Path | None = None) -> str:
    """--lang, else the config's (or SEGEL_LOCALE_LANGUAGE's) locale.language: id by default."""
    if lang:
        return lang
    from segel import config as cfgmod

    try:
        return cfgmod.load(config_path).locale.language
    except cfgmod.ConfigError:
        return "id"


def _lang_option(fn):  # type: ignore[no-untyped-def]
    return click.option("--lang", type=click.Choice(["id", "en"]),
                        help="Language of the verdict (default: locale.language, i.e. id = Bahasa Indonesia).")(fn)


def _report(res, as_json: bool, lang: str) -> None:  # type: ignore[no-untyped-def]
    from segel.custody import bundle

    if as_json:
        click.echo(json.dumps({"valid": res.ok and res.signed > 0, "intact": res.ok, "box": res.box,
                               "entries": res.entries, "head": res.head, "signed_checkpoints": res.signed,
                               "covered": res.covered, "problems": [
                                   {"position": p.position, "seq": p.seq, "kind": p.kind, "message": p.message}
                                   for p in res.problems],
                               "notes": [t.format(**params) for t, params in res.notes]}, indent=2))
    else:
        for line in bundle.describe(res, lang):
            click.echo(line)
    if not res.ok:
        sys.exit(EXIT_INVALID)
    if res.signed == 0:
        sys.exit(EXIT_UNSIGNED)


def register(group: click.Group) -> None:
    grp = subgroup(group, "ledger", "The custody ledger: export a box's bundle, verify, sign checkpoints "
                                    "(docs/custody.md).")

    @grp.command("export", epilog="""\b
Examples:
  segel ledger export 64.08.17.2002-002-GUB --config segel.toml
  segel ledger export 64.08.17.2002-002-GUB --db rehearsal/segel.db -o box.bundle.json
\b
The bundle holds the box's ledger entries, every checkpoint signed for it and the public key;
it is signed itself when the signing key is at hand. Anyone verifies it offline with
`segel verify BUNDLE --key PUBLIC_KEY` (format: docs/custody.md).""")
    @click.argument("box")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  help="File to write (default: <box>.bundle.json).")
    @_options
    def export_cmd(box: str, output: Path | None, config_path: Path | None, db: str | None, key: Path | None) -> None:
        """Write a box's custody bundle (entries, checkpoints, public key)."""
        from segel.custody import bundle

        c = _custody(config_path, db, key)
        doc = bundle.build(c.conn, box, c.instance, tz_name=c.tz_name, tz_offset_min=c.tz_offset_min, key=c.key)
        if not doc["entries"]:
            raise click.ClickException(f"box {box!r} has no ledger entries (see `segel alerts list --box`, or the "
                                       "box id on its label)")
        out = output or Path(f"{box}.bundle.json")
        out.write_bytes(bundle.dumps(doc))
        signed = "signed" if c.key else f"NOT signed ({c.key_error})"
        click.echo(f"{out}: {len(doc['entries'])} entries, {len(doc['checkpoints'])} checkpoints, bundle {signed}")

    @grp.command("verify", epilog="""\b
Examples:
  segel ledger verify 64.08.17.2002-002-GUB --config segel.toml
\b
Checks the box's chain in the database against its stored checkpoints (and the published
checkpoint file, custody.checkpoint_file). Exit status 0 valid, 1 invalid, 3 intact but unsigned.""")
    @click.argument("box")
    @click.option("--json", "as_json", is_flag=True, help="The verdict as JSON.")
    @_lang_option
    @_options
    def verify_cmd(box: str, as_json: bool, lang: str | None, config_path: Path | None, db: str | None,
                   key: Path | None) -> None:
        """Verify a box's ledger in the database."""
        from segel.custody import bundle

        c = _custody(config_path, db, key)
        doc = bundle.build(c.conn, box, c.instance, tz_name=c.tz_name, tz_offset_min=c.tz_offset_min)
        extra = _read_checkpoints(c.checkpoint_file) if c.checkpoint_file and c.checkpoint_file.exists() else []
        _report(bundle.verify(doc, [c.key.public_hex] if c.key else None, extra), as_json, _language(lang, config_path))

    @grp.command("checkpoint", epilog="""\b
Examples:
  segel ledger checkpoint --config segel.toml
\b
The gateway does this every custody.checkpoint_interval_s; run it by hand for a database no
gateway is running on (after a rehearsal, before an export). Appends to custody.checkpoint_file.""")
    @_options
    def checkpoint_cmd(config_path: Path | None, db: str | None, key: Path | None) -> None:
        """Sign the head of every box chain that changed since its last checkpoint, now."""
        import time

        from segel import config as cfgmod
        from segel.service.checkpointer import Checkpointer

        c = _custody(config_path, db, key, need_key=True)
        assert c.key is not None
        cfg = cfgmod.load(config_path, overrides={"gateway.db": db, "custody.signing_key": str(Path(c.key.path).resolve())})
        cp = Checkpointer(cfg)
        cp.run(c.conn, time.time())
        where = f"; appended to {cp.file}" if cp.file else ""
        click.echo(f"{cp.made} checkpoint(s) signed with key {c.key.key_id if c.key else '-'}{where}")

    @group.command("verify", epilog="""\b
Examples:
  segel verify box.bundle.json --key 5f1c...e0 (the public key printed on the report)
  segel verify box.bundle.json --key segel-public.pem --checkpoints published.jsonl
\b
Needs nothing but the bundle (and, to be sure, the public key from the election office: a
bundle's own key proves only that it is self-consistent). --checkpoints adds the checkpoints
you kept yourself (the append-only file, or webhook deliveries): a chain rewritten after they
were published no longer matches them, and the verifier names the entry. Exit status: 0 valid,
1 invalid (the entry altered, removed or reordered is named), 3 intact but no signed checkpoint.""")
    @click.argument("bundle_file", metavar="BUNDLE", required=False,
                    type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--key", "keys", multiple=True, metavar="PUBLIC_KEY",
                  help="The instance's public key: 64 hex digits, or a PEM file (repeat for several keys).")
    @click.option("--checkpoints", "cp_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Your own copy of the published checkpoints (JSON lines).")
    @click.option("--qr", "qr_text", metavar="TEXT", help="The text of a report's checkpoint QR code (SEGELCP1|...): "
                  "checks its signature, and with BUNDLE that the bundle holds that head.")
    @click.option("--json", "as_json", is_flag=True, help="The verdict as JSON.")
    @_lang_option
    def verify_bundle_cmd(bundle_file: Path | None, keys: tuple[str, ...], cp_file: Path | None, qr_text: str | None,
                          as_json: bool, lang: str | None) -> None:
        """Verify a custody bundle offline: says VALID, or which entry was altered, removed or reordered."""
        from segel.custody import bundle, checkpoints

        if bundle_file is None and qr_text is None:
            raise click.UsageError("give a BUNDLE file, or --qr TEXT (or both)")
        trusted = []
        for k in keys:
            text = Path(k).read_text(encoding="utf-8") if Path(k).is_file() else k
            try:
                trusted.append(checkpoints.public_key_from_text(text))
            except (checkpoints.SigningKeyError, ValueError) as e:
                raise click.ClickException(f"--key {k}: {e}") from None
        if qr_text is not None:
            from segel import i18n

            _ = i18n.translator(_language(lang))._
            ok, fields, template, params = checkpoints.check_qr(qr_text, trusted)
            msg = _(template).format(**params)
            click.echo(_("VALID checkpoint code: {why}").format(why=msg) if ok else
                       _("INVALID checkpoint code: {why}").format(why=msg))
            if fields:
                click.echo(_("  box {box}, entries 0 to {seq}, head {head}").format(**fields))
            if not ok:
                sys.exit(EXIT_INVALID)
            if bundle_file is not None:
                try:
                    doc = bundle.loads(bundle_file.read_bytes())
                except bundle.BundleError as e:
                    raise click.ClickException(f"{bundle_file}: {e}") from None
                seq = int(fields["seq"])
                have = doc["entries"][seq]["hash"] if doc["box"] == fields["box"] and seq < len(doc["entries"]) else None
                if have != fields["head"]:
                    click.echo(_("INVALID: the bundle's entry {seq} is not the head the printed checkpoint signed")
                               .format(seq=seq))
                    sys.exit(EXIT_INVALID)
                click.echo(_("  the bundle's entry {seq} is that head").format(seq=seq))
        if bundle_file is None:
            return
        extra = _read_checkpoints(cp_file) if cp_file else None
        _report(bundle.verify(bundle_file.read_bytes(), trusted or None, extra), as_json, _language(lang))
