"""`segel users add|passwd|disable|enable|list`: accounts for the console (docs/console.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from segel.commands._common import db_options, open_db, subgroup


def _password(generate: bool, stdin: bool) -> tuple[str, bool]:
    """(password, generated): from stdin, generated, or asked for twice without echo."""
    from segel import accounts

    if stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if generate:
        return accounts.generate_password(), True
    return click.prompt("Password", hide_input=True, confirmation_prompt=True), False


def register(group: click.Group) -> None:
    grp = subgroup(group, "users", "Console accounts: add, change a password, disable, list (docs/console.md).")

    @grp.command("add", epilog="""\b
Examples:
  segel users add sari --role admin --name "Sari Dewi"          asks for the password twice
  segel users add budi --role operator --district 64.08.01 --district 64.08.02
  segel users add rina --role viewer --generate                   prints a generated password once
  segel users add tps1 --role officer --place 64.08.01.2001-001 --password-stdin < pw.txt
  segel users add ops --role operator --email ops@kpu.example --email-alerts

\b
Roles: admin (everything, accounts too), supervisor (sees and acts everywhere), operator
(acknowledges and resolves alerts; only in its districts when given), viewer (oversight:
reads, changes nothing), officer (receiving officer: confirms handovers at its places).
There is no default account or password: create the first admin with this command.""")
    @click.argument("username")
    @click.option("--role", required=True, type=click.Choice(["admin", "supervisor", "operator", "viewer", "officer"]),
                  help="What the account may do (see below).")
    @click.option("--name", "full_name", default="", help="Full name, shown in the console and in alert history.")
    @click.option("--district", "districts", multiple=True, metavar="PPK", help="Limit to this district (PPK code); repeat for more.")
    @click.option("--place", "places", multiple=True, metavar="CODE", help="Limit to this custody place (officers); repeat for more.")
    @click.option("--language", type=click.Choice(["id", "en"]), help="The account's language (default: the browser's choice, else locale.language).")
    @click.option("--email", help="Email address (for --email-alerts).")
    @click.option("--email-alerts", is_flag=True, help="Email this user critical alerts in its scope (needs [notify] smtp_host).")
    @click.option("--generate", is_flag=True, help="Generate a password and print it once.")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
    @db_options
    def add_cmd(username: str, role: str, full_name: str, districts: tuple[str, ...], places: tuple[str, ...],
                language: str | None, email: str | None, email_alerts: bool, generate: bool, password_stdin: bool,
                config_path: Path | None, db: str | None) -> None:
        """Create an account."""
        from segel import accounts

        conn = open_db(config_path, db)
        password, generated = _password(generate, password_stdin)
        try:
            u = accounts.add(conn, username, role, password, full_name=full_name, districts=districts, places=places,
                             language=language, email=email, email_alerts=email_alerts)
        except accounts.AccountError as e:
            raise click.ClickException(str(e)) from None
        scope = ", ".join(u.districts + u.places) or "everywhere"
        click.echo(f"added {u.username} ({u.role}; scope: {scope})")
        if generated:
            click.echo(f"password: {password}   (shown once: hand it over safely)")

    @grp.command("passwd", epilog="""\b
Examples:
  segel users passwd sari                 asks for the new password twice
  segel users passwd sari --generate      prints a generated password once

\b
Ends the user's open sessions and clears a lock-out after failed sign-ins.""")
    @click.argument("username")
    @click.option("--generate", is_flag=True, help="Generate a password and print it once.")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
    @db_options
    def passwd_cmd(username: str, generate: bool, password_stdin: bool, config_path: Path | None, db: str | None) -> None:
        """Set a new password."""
        from segel import accounts

        conn = open_db(config_path, db, must_exist=True)
        if accounts.get(conn, username) is None:
            raise click.ClickException(f"no user {username!r} (segel users list)")
        password, generated = _password(generate, password_stdin)
        try:
            accounts.set_password(conn, username, password)
        except accounts.AccountError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"password of {username} changed; its sessions are closed")
        if generated:
            click.echo(f"password: {password}   (shown once)")

    @grp.command("disable", epilog="""\b
Examples:
  segel users disable budi        signs budi out everywhere and refuses new sign-ins
  segel users enable budi""")
    @click.argument("username")
    @db_options
    def disable_cmd(username: str, config_path: Path | None, db: str | None) -> None:
        """Disable an account (its sessions end at once)."""
        from segel import accounts

        try:
            accounts.set_disabled(open_db(config_path, db, must_exist=True), username, True)
        except accounts.AccountError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{username} disabled")

    @grp.command("enable", epilog="""\b
Examples:
  segel users enable budi""")
    @click.argument("username")
    @db_options
    def enable_cmd(username: str, config_path: Path | None, db: str | None) -> None:
        """Enable a disabled account again."""
        from segel import accounts

        try:
            accounts.set_disabled(open_db(config_path, db, must_exist=True), username, False)
        except accounts.AccountError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{username} enabled")

    @grp.command("list", epilog="""\b
Examples:
  segel users list --config segel.toml""")
    @db_options
    def list_cmd(config_path: Path | None, db: str | None) -> None:
        """List the accounts: role, scope, language, state."""
        from segel import accounts

        users = accounts.listing(open_db(config_path, db, must_exist=True))
        if not users:
            click.echo("no users yet: segel users add NAME --role admin")
            return
        rows = [("USER", "ROLE", "NAME", "SCOPE", "LANG", "EMAIL ALERTS", "STATE")]
        for u in users:
            rows.append((u.username, u.role, u.full_name or "-", ", ".join(u.districts + u.places) or "everywhere",
                         u.language or "-", u.email if u.email_alerts and u.email else "-",
                         "disabled" if u.disabled else "active"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
