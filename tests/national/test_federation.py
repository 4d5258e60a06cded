"""`segel deploy federation`: the files of a national deployment from a spec of regencies and nodes."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import bcrypt
import pytest
from click.testing import CliRunner
from segel import config as cfgmod
from segel.cli import main
from segel.national import codes, federation, settings, wilayah


def spec_file(tmp: Path, regencies: str = "", extra: str = "") -> Path:
    (tmp / "regencies.csv").write_text("code,name,host\n64.08,Kabupaten Kutai Timur,gw.kutim.example\n"
                                       "6401,Kabupaten Paser,gw.paser.example\n")
    p = tmp / "federation.toml"
    p.write_text(f"""
[national]
nodes = [{{name = "nasional-1", host = "10.20.0.11"}}, {{name = "nasional-2", host = "10.20.0.12"}},
         {{name = "nasional-3", host = "10.20.0.13"}}]
store_dsn = "postgresql://segel@10.20.0.20:5432/segel"
regencies = "regencies.csv"
{extra}
{regencies}
""")
    return p


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_every_file_of_a_three_node_deployment(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, '[[regency]]\ncode = "73.71"\nname = "Kota Makassar"\n')
    out = tmp_path / "out"
    res = run("deploy", "federation", "--spec", str(spec), "--out", str(out), "--bcrypt-cost", "4")
    assert res.exit_code == 0, res.output
    assert "3 national nodes, 3 regencies, 4 accounts" in res.output
    creds = json.loads((out / "credentials.json").read_text())
    assert stat.S_IMODE((out / "credentials.json").stat().st_mode) == 0o600
    for node in ("nasional-1", "nasional-2", "nasional-3"):
        conf = (out / "national" / node / "nats-server.conf").read_text()
        assert f'server_name: "{node}"' in conf and "nats-route://10.20.0.12:6222" in conf and "jetstream" in conf
        assert 'listen: "0.0.0.0:8883"' in conf and f"/{node}.crt" in conf
        # each regency may publish only under its own code and read only its receipts
        line = next(ln for ln in conf.splitlines() if '"regency-6408"' in ln)
        assert '"segel.up.64.6408"' in line and '"segel.receipt.6408"' in line and "segel.up.>" not in line
        h = line.split('password: "')[1].split('"')[0]
        assert bcrypt.checkpw(creds["passwords"]["regency-6408"].encode(), h.encode())
        assert creds["passwords"]["regency-6408"] not in conf  # NATS gets hashes only
        ingest = settings.load(out / "national" / node / "ingest-1.toml", env={})
        assert ingest.ingest.partitions == ["segel/up/#"] and ingest.ingest.name == "ingest-1"
        assert ingest.ingest.urls[0] == f"mqtts://{ {'nasional-1': '10.20.0.11', 'nasional-2': '10.20.0.12', 'nasional-3': '10.20.0.13'}[node]}:8883"
        assert ingest.store.dsn == "postgresql://segel@10.20.0.20:5432/segel"
    # the regency's [national] section loads as the gateway's config and names its own account
    sec = (out / "regency" / "6408" / "national.toml").read_text()
    cfg_path = tmp_path / "segel.toml"
    cfg_path.write_text(sec)
    cfg = cfgmod.load(cfg_path, env={})
    assert cfg.national.regency == "64.08" and len(cfg.national.urls) == 3
    assert cfg.national.username == "regency-6408" and cfg.national.password == creds["passwords"]["regency-6408"]
    units = out / "national" / "systemd"
    assert "nats-server -c /etc/segel/national/nats-server.conf" in (units / "segel-nats.service").read_text()
    assert "segel national ingest --config /etc/segel/national/%i.toml" in (
        units / "segel-national-ingest@.service").read_text()
    assert "CREATE DATABASE segel" in (out / "national" / "postgres-setup.sql").read_text()
    assert "Adding a regency" in (out / "README.md").read_text()


def test_a_second_run_keeps_passwords_and_adds_a_regency(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = spec_file(tmp_path)
    assert run("deploy", "federation", "--spec", str(spec), "--out", str(out), "--bcrypt-cost", "4").exit_code == 0
    first = json.loads((out / "credentials.json").read_text())["passwords"]
    spec = spec_file(tmp_path, '[[regency]]\ncode = "73.71"\nname = "Kota Makassar"\n')
    res = run("deploy", "federation", "--spec", str(spec), "--out", str(out), "--bcrypt-cost", "4", "--rotate", "64.01")
    assert res.exit_code == 0, res.output
    second = json.loads((out / "credentials.json").read_text())["passwords"]
    assert second["regency-6408"] == first["regency-6408"] and second[federation.INGEST_USER] == first[federation.INGEST_USER]
    assert second["regency-6401"] != first["regency-6401"]  # rotated
    assert "regency-7371" in second and (out / "regency" / "7371" / "national.toml").exists()


def test_ingester_partitions_split_the_provinces(tmp_path: Path) -> None:
    regs = "".join(f'[[regency]]\ncode = "{c}"\n' for c in ("11.01", "11.02", "31.71", "31.72", "31.73", "64.72", "91.03"))
    out = tmp_path / "out"
    spec = spec_file(tmp_path, regs, extra="ingesters = 2")
    assert run("deploy", "federation", "--spec", str(spec), "--out", str(out), "--bcrypt-cost", "4").exit_code == 0
    parts = [settings.load(out / "national" / "nasional-2" / f"ingest-{k}.toml", env={}).ingest for k in (1, 2)]
    topics = [t for p in parts for t in p.partitions]
    assert sorted(topics) == ["segel/up/11/+", "segel/up/31/+", "segel/up/64/+", "segel/up/91/+"]  # each once
    assert {p.name for p in parts} == {"ingest-1", "ingest-2"}
    assert "segel/up/31/+" in parts[0].partitions  # the province with most regencies goes first


def test_the_generated_configuration_is_accepted_by_nats_server(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = spec_file(tmp_path, extra="tls = false")
    assert run("deploy", "federation", "--spec", str(spec), "--out", str(out), "--bcrypt-cost", "4").exit_code == 0
    conf = out / "national" / "nasional-1" / "nats-server.conf"
    r = subprocess.run(["nats-server", "-c", str(conf), "-t"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("body, message", [
    ("[national]\nnodes = []\n", "national.nodes is empty"),
    ('[national]\nnodes = [{name = "a", host = "h"}]\n', "no regency listed"),
    ('[national]\nnodes = [{name = "a"}]\n', "needs a name and a host"),
    ('[national]\nnodes = [{name = "a", host = "h"}]\n[[regency]]\ncode = "64"\n', "regency[0].code"),
    ('[national]\nnodes = [{name = "a", host = "h"}]\n[[regency]]\ncode = "64.08"\n[[regency]]\ncode = "6408"\n',
     "listed twice"),
    ('[national]\nnodes = [{name = "a", host = "h"}]\nbogus = 1\n[[regency]]\ncode = "64.08"\n', "unknown key(s) bogus"),
    ('[national]\nnodes = [{name = "a", host = "h"}]\nregencies = "missing.csv"\n', "missing.csv not found"),
])
def test_a_bad_spec_says_what_and_where(tmp_path: Path, body: str, message: str) -> None:
    p = tmp_path / "f.toml"
    p.write_text(body)
    res = run("deploy", "federation", "--spec", str(p), "--out", str(tmp_path / "o"))
    assert res.exit_code != 0 and message in res.output, res.output


def test_a_bad_row_of_the_regency_list_is_named(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("code,name\n64.08,Kutai Timur\n64.0X,Bad\n")
    p = tmp_path / "f.toml"
    p.write_text('[national]\nnodes = [{name = "a", host = "h"}]\nregencies = "r.csv"\n')
    res = run("deploy", "federation", "--spec", str(p), "--out", str(tmp_path / "o"))
    assert res.exit_code != 0 and "r.csv:3: field code" in res.output


def test_all_514_regencies_are_known_with_their_provinces() -> None:
    regs = wilayah.regencies()
    assert len(regs) == 514 and len(wilayah.provinces()) == 38
    assert regs["64.08"] == "Kabupaten Kutai Timur" and wilayah.province_name("64.08") == "Kalimantan Timur"
    assert all(codes.parse(c) == c for c in regs)
    assert {wilayah.zone(c) for c in ("64.08", "31.71", "91.03")} == {"WITA", "WIB", "WIT"}
    spec = federation.Spec([federation.Node("n1", "h")], [federation.Regency(c, n) for c, n in regs.items()])
    creds = federation.Credentials()
    for c in regs:
        creds.passwords[codes.user(c)] = "x"
        creds.hashes[codes.user(c)] = "$2b$04$" + "a" * 53
    creds.hashes[federation.INGEST_USER] = "$2b$04$" + "b" * 53
    conf = federation.nats_conf(spec, spec.nodes[0], creds)
    assert conf.count("regency-") == 514
