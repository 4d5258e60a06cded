"""`segel keys init|show`: the instance's Ed25519 key that signs ledger checkpoints and bundles."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._common import CONFIG_HELP, subgroup

DEFAULT_KEY = "fleet/signing.key"


def key_path(config_path: Path | None, key: Path | None) -> Path:
    """--key, else the config's custody.signing_key, else fleet/signing.key."""
    if key is not None:
        return key
    if config_path is not None:
        from segel import config as cfgmod

        try:
            cfg = cfgmod.load(config_path)
        except cfgmod.ConfigError as e:
            raise click.ClickException(str(e)) from None
        if cfg.custody.signing_key:
            return cfg.path(cfg.custody.signing_key)
    return Path(DEFAULT_KEY)


def _key_options(fn):  # type: ignore[no-untyped-def]
    fn = click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
                      help=f"The key file (default: the config's custody.signing_key, else {DEFAULT_KEY}).")(fn)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                        help=CONFIG_HELP)(fn)


def _describe(pub_hex: str, kid: str, path: Path) -> None:
    groups = " ".join(pub_hex[i:i + 8] for i in range(0, 64, 8))
    click.echo(f"key file:    {path}")
    click.echo(f"key id:      {kid}")
    click.echo(f"public key:  {pub_hex}")
    click.echo(f"  (to read aloud: {groups})")


def register(group: click.Group) -> None:
    grp = subgroup(group, "keys", "Keys of this Segel instance (docs/custody.md: signed checkpoints).")

    @grp.command("init", epilog="""\b
Examples:
  segel keys init                         writes fleet/signing.key (owner-only, mode 600)
  segel keys init --config segel.toml     the file the config's custody.signing_key names
\b
The gateway signs the heads of the box ledgers with this key (custody.signing_key) and every
report prints its public key. Give the public key to oversight (Bawaslu, observers) on paper:
with it they verify a bundle offline (segel verify BUNDLE --key PUBLIC_KEY). A key is never
overwritten: checkpoints signed with it must stay verifiable.""")
    @_key_options
    def init_cmd(config_path: Path | None, key: Path | None) -> None:
        """Create the instance's signing key (Ed25519)."""
        from segel.custody import checkpoints

        path = key_path(config_path, key)
        try:
            k = checkpoints.create_key(path)
        except (checkpoints.SigningKeyError, OSError) as e:
            raise click.ClickException(str(e)) from None
        click.echo("created a new signing key (readable by its owner only)")
        _describe(k.public_hex, k.key_id, path)
        click.echo("next: set custody.signing_key in the gateway's config to this file, and hand the public key "
                   "to oversight")

    @grp.command("show", epilog="""\b
Examples:
  segel keys show
  segel keys show --config segel.toml
  segel keys show --pem > segel-public.pem      the public key as a PEM file, for other tools""")
    @_key_options
    @click.option("--pem", is_flag=True, help="Print the public key as PEM (SubjectPublicKeyInfo) only.")
    def show_cmd(config_path: Path | None, key: Path | None, pem: bool) -> None:
        """Show the signing key's public half and its id (never the private key)."""
        from segel.custody import checkpoints

        path = key_path(config_path, key)
        try:
            k = checkpoints.load_key(path)
        except checkpoints.SigningKeyError as e:
            raise click.ClickException(str(e)) from None
        if pem:
            click.echo(checkpoints.public_pem(k.public_hex), nl=False)
            return
        _describe(k.public_hex, k.key_id, path)
