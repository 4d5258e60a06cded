"""Label sheets (the QR codes are read back out of the PDF's drawing operators and compared with
the codes for each device id) and pairing trackers to boxes from arguments or a CSV of scans."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest

from segel import registry as reg
from segel import store
from segel.provision import labels, pairing
from segel.ids import parse_device


def _devices(n: int) -> list[reg.Device]:
    return [reg.Device(0x101 + i, 0, "tbeam-v1.1", "tracker") for i in range(n)]


def _qr_groups(stream: str) -> list[set[tuple[int, int]]]:
    """Dark modules of each label's QR, rebuilt from `x y w h re f` operators (PDF points)."""
    groups: list[list[tuple[float, ...]]] = [[]]
    for line in stream.splitlines():
        m = re.fullmatch(r"([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) re f", line.strip())
        if m:
            groups[-1].append(tuple(float(v) for v in m.groups()))
        elif line.strip().startswith("BT") and groups[-1]:
            groups.append([])
    out = []
    for g in (g for g in groups if g):
        cell = min(abs(r[3]) for r in g)
        x0 = min(r[0] for r in g)
        top = max(max(r[1], r[1] + r[3]) for r in g)
        mods = set()
        for x, y, w, h in g:
            row = round((top - max(y, y + h)) / cell)
            c0 = round((x - x0) / cell)
            mods.update((row, c0 + k) for k in range(round(w / cell)))
        out.append(mods)
    return out


def test_label_sheet_holds_each_id_as_text_and_qr(tmp_path: Path) -> None:
    devs = _devices(26)  # 24 per page: two pages
    out = tmp_path / "labels.pdf"
    assert labels.render(devs, out, compress=False) == 2
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF-")
    streams = [s.decode("latin-1") for s in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)]
    content = "\n".join(s for s in streams if " re f" in s)
    for d in devs:
        assert f"(SGL-{d.hex}) Tj" in content
    qrs = _qr_groups(content)
    assert len(qrs) == len(devs)
    for d, got in zip(devs, qrs, strict=True):
        m = labels.qr_matrix(labels.label_text(d.hex))
        want = {(r, c) for r, row in enumerate(m) for c, v in enumerate(row) if v}
        assert got == want, d.hex
    assert parse_device(labels.label_text("000101")) == 0x101
    # the compressed default is what gets printed: same text inside
    labels.render(devs[:1], out)
    body = b"".join(zlib.decompress(s) for s in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", out.read_bytes(), re.S)
                    if s[:1] == b"x")
    assert b"(SGL-000101) Tj" in body


@pytest.fixture
def registry(tmp_path: Path) -> reg.Registry:
    r = reg.Registry(store.connect(tmp_path / "r.db"))
    for i in (0x101, 0x102, 0x103):
        r.add_device(i)
    return r


def test_pair_refuses_a_tracker_on_another_box_unless_forced(registry: reg.Registry) -> None:
    p = pairing.pair(registry, "KT-001", "SGL-000101", tps="TPS 01 Sangatta Utara")
    assert (p.box_id, p.device, p.previous_box) == ("KT-001", "000101", None)
    with pytest.raises(pairing.PairError, match="already on box KT-001; use --force"):
        pairing.pair(registry, "KT-002", "000101")
    moved = pairing.pair(registry, "KT-002", "000101", force=True, by="tech-7")
    assert moved.previous_box == "KT-001"
    rows = registry.conn.execute("SELECT box_id, previous_box, forced, by FROM pairings ORDER BY id").fetchall()
    assert rows == [("KT-001", None, 0, None), ("KT-002", "KT-001", 1, "tech-7")]
    with pytest.raises(pairing.PairError, match="device 000abc is not registered"):
        pairing.pair(registry, "KT-003", "000abc")
    with pytest.raises(pairing.PairError, match="not a device id"):
        pairing.pair(registry, "KT-003", "kotak")


def test_pair_from_a_csv_of_scans(registry: reg.Registry) -> None:
    text = ("Box,Scan,TPS\n"
            "KT-010,SGL-000101,TPS 01\n"
            "KT-011,SGL-000102,TPS 02\n"
            "KT-012,SGL-0001ff,TPS 03\n"
            "KT-013,SGL-000101,TPS 04\n"
            "KT-014,SGL-000103,\n")
    res = pairing.pair_csv(registry, text)
    assert [(p.box_id, p.device) for p in res.paired] == [("KT-010", "000101"), ("KT-011", "000102"),
                                                          ("KT-014", "000103")]
    assert res.refused == [(4, "device 0001ff is not registered: provision it first"),
                           (5, "device 000101 is already on box KT-010; use --force to move it")]
    assert registry.box_of(0x103) == ("KT-014", None)
    with pytest.raises(pairing.PairError, match="no box column"):
        pairing.pair_csv(registry, "kotak,device\nA,000101\n")
