"""QR codes for PDFs: the module matrix, and drawing it as vector rectangles (one per run of dark
modules in a row), so labels and reports print sharp at any size."""

from __future__ import annotations

from typing import Any

import qrcode  # type: ignore[import-untyped]


def matrix(text: str, mask_pattern: int | None = None) -> list[list[bool]]:
    """The QR code for `text` (error correction M, no quiet zone: the page leaves its own margin).
    A fixed `mask_pattern` (0-7) skips choosing the best of eight, the slow part of encoding."""
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=mask_pattern)
    q.add_data(text)
    q.make(fit=True)
    return [list(row) for row in q.get_matrix()]


def draw(pdf: Any, m: list[list[bool]], x: float, y: float, size: float) -> None:
    """Draw matrix `m` as a size x size square at (x, y) on an fpdf2 page."""
    cell = size / len(m)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(m):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                pdf.rect(x + start * cell, y + r * cell, (c - start) * cell, cell, style="F")
            else:
                c += 1
