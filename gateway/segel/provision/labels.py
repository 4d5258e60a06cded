"""A printable A4 sheet of tracker labels: device id as text and as a QR code.

The QR code holds `SGL-<device id>` (segel.ids.parse_device reads it back), so a crew scans
the tracker with any phone app and `segel pair --csv` accepts the scans as they come. QR modules
are drawn as vector rectangles (one per horizontal run), so the sheet prints sharp at any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from segel import qrdraw
from segel import registry as reg
from segel.ids import box_label

PREFIX = "SGL-"


def label_text(device_hex: str) -> str:
    return PREFIX + device_hex


def qr_matrix(text: str) -> list[list[bool]]:
    """The QR code for `text` (error correction M, no quiet zone: the label leaves its own margin)."""
    return qrdraw.matrix(text)


@dataclass(frozen=True)
class Layout:
    """Label grid on A4 (mm). The default fits 3 × 8 labels of 70 × 37 mm (common sticker sheets)."""

    cols: int = 3
    rows: int = 8
    width: float = 70.0
    height: float = 37.0
    left: float = 0.0
    top: float = 0.5
    qr: float = 27.0


def render(devices: list[reg.Device], output: Path, layout: Layout = Layout(), title: str = "Segel tracker",
           compress: bool = True, fleet: str | None = None) -> int:
    """Write the PDF; returns the number of pages. With `fleet` (segel.ids.fleet_id), a tracker
    paired with a box gets the box label a receiving officer scans: box code and tracker id."""
    if not devices:
        raise ValueError("no devices to label")
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_compression(compress)
    pdf.set_auto_page_break(False)
    pdf.set_title("Segel tracker labels")
    per_page = layout.cols * layout.rows
    for i, dev in enumerate(devices):
        if i % per_page == 0:
            pdf.add_page()
        slot = i % per_page
        x0 = layout.left + (slot % layout.cols) * layout.width
        y0 = layout.top + (slot // layout.cols) * layout.height
        _label(pdf, dev, x0, y0, layout, title, fleet)
    pdf.output(str(output))
    return pdf.pages_count


def _label(pdf: FPDF, dev: reg.Device, x0: float, y0: float, layout: Layout, title: str,
           fleet: str | None = None) -> None:
    text = label_text(dev.hex)
    boxed = fleet is not None and dev.box_id is not None
    m = qr_matrix(box_label(fleet, dev.box_id, dev.device_id) if boxed else text)  # type: ignore[arg-type]
    pad = (layout.height - layout.qr) / 2
    qx, qy = x0 + pad, y0 + pad
    qrdraw.draw(pdf, m, qx, qy, layout.qr)
    tx = qx + layout.qr + 3
    pdf.set_xy(tx, y0 + pad)
    pdf.set_font("Helvetica", "", 7)
    pdf.cell(0, 4, title)
    pdf.set_xy(tx, y0 + pad + 7)
    pdf.set_font("Courier", "B", 13)
    pdf.cell(0, 6, text)
    pdf.set_xy(tx, y0 + pad + 15)
    pdf.set_font("Helvetica", "", 7)
    pdf.cell(0, 4, f"{dev.board}  epoch {dev.key_epoch}")
    if boxed:  # the box this tracker is sealed to: what the receiving officer reads and scans
        pdf.set_xy(tx, y0 + pad + 20)
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(0, 4, f"{dev.box_id}")


# ---- which printed labels are out of date --------------------------------------------------------

PRINTED_LOG = "labels-log.jsonl"  # in the fleet folder: one line per label printed


def record_printed(fleet_root: Path, devices: list[reg.Device], at: float | None = None) -> None:
    """Remember what each printed label shows (its key epoch and box), for `segel labels --stale`."""
    import json
    import time

    now = time.time() if at is None else at
    with (fleet_root / PRINTED_LOG).open("a", encoding="utf-8") as fh:
        for d in devices:
            fh.write(json.dumps({"device": d.hex, "epoch": d.key_epoch, "box": d.box_id, "at": round(now, 3)}) + "\n")


def stale(fleet_root: Path, devices: list[reg.Device]) -> list[reg.Device]:
    """Devices whose label was never printed, or shows another key epoch or box than now (after a
    re-image, a `segel keys rotate` or a re-pairing)."""
    import json

    last: dict[str, tuple[int, str | None]] = {}
    p = fleet_root / PRINTED_LOG
    if p.is_file():
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                d = json.loads(line)
                last[str(d["device"])] = (int(d["epoch"]), d.get("box"))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line after a crash: that label counts as not printed
    return [d for d in devices if last.get(d.hex) != (d.key_epoch, d.box_id)]
