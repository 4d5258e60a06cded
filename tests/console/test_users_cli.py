"""`segel users add|passwd|disable|enable|list` through the CLI runner."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from segel import accounts, store
from segel.cli import main


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), input=input)
    return r.exit_code, r.output


def test_users_lifecycle(tmp_path: Path) -> None:
    db = str(tmp_path / "segel.db")
    code, out = run("users", "list", "--db", db)
    assert code == 1 and "no gateway database" in out
    code, out = run("users", "add", "sari", "--role", "admin", "--name", "Sari Dewi", "--db", db,
                    input="a good password\na good password\n")
    assert code == 0 and "added sari (admin; scope: everywhere)" in out
    code, out = run("users", "add", "budi", "--role", "operator", "--district", "64.08.01", "--generate", "--db", db)
    assert code == 0 and "password: " in out
    generated = out.split("password: ")[1].split()[0]
    conn = store.connect(db)
    assert accounts.authenticate(conn, "budi", generated).districts == ("64.08.01",)
    code, out = run("users", "add", "x", "--role", "viewer", "--password-stdin", "--db", db, input="short\n")
    assert code == 1 and "at least 10 characters" in out
    code, out = run("users", "add", "t", "--role", "officer", "--password-stdin", "--db", db, input="long enough pw\n")
    assert code == 1 and "give --district or --place" in out
    code, out = run("users", "disable", "budi", "--db", db)
    assert code == 0 and accounts.get(conn, "budi").disabled  # type: ignore[union-attr]
    code, out = run("users", "list", "--db", db)
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "ROLE", "NAME", "SCOPE", "LANG", "EMAIL", "ALERTS", "STATE"]
    assert "budi" in lines[1] and "64.08.01" in lines[1] and lines[1].endswith("disabled")
    assert "Sari Dewi" in lines[2] and "everywhere" in lines[2]
    code, out = run("users", "passwd", "nobody", "--generate", "--db", db)
    assert code == 1 and "no user 'nobody'" in out
    code, out = run("users", "passwd", "sari", "--password-stdin", "--db", db, input="another good one\n")
    assert code == 0 and accounts.authenticate(conn, "sari", "another good one").username == "sari"
    conn.close()
