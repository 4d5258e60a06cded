"""Every string a report shows, in one place: English source strings with their Bahasa Indonesia text.

`Texts(lang, tz)._("...")` translates; `Texts.when(t)` writes a time in the report's zone. (The
console's gettext catalog takes these over once it exists: the English strings are its msgids.)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

ID: dict[str, str] = {
    "Ballot box custody report": "Laporan Rantai Pengawasan Kotak Suara",
    "District custody report": "Laporan Pengawasan Kotak Suara per Kecamatan",
    "Box": "Kotak", "Polling station (TPS)": "TPS", "District (PPK)": "Kecamatan (PPK)", "Contest": "Pemilihan",
    "Tracker": "Pelacak", "Report made": "Laporan dibuat", "Instance": "Instansi",
    "Times are local ({zone}).": "Waktu setempat ({zone}).",
    "Summary": "Ringkasan", "Delivered to its TPS": "Tiba di TPS-nya", "Back at the warehouse": "Kembali di gudang",
    "yes": "ya", "no": "tidak", "Seal": "Segel", "opened without authority": "dibuka tanpa izin",
    "intact, or opened only with authority": "utuh, atau dibuka hanya dengan izin",
    "Open alerts": "Peringatan terbuka", "Handover receipts": "Berita acara serah terima",
    "Route map": "Peta perjalanan",
    "The tracker's fixes over the places and roads of the box's plan (drawn offline).":
        "Titik posisi pelacak di atas tempat dan jalan sesuai rencana kotak (digambar tanpa internet).",
    "start": "awal", "end": "akhir", "seal event": "kejadian segel", "alert": "peringatan", "road": "jalan",
    "Custody legs against the plan": "Tahapan pengiriman terhadap rencana",
    "warehouse_to_ppk": "gudang ke PPK", "ppk_to_pps": "PPK ke PPS", "pps_to_tps": "PPS ke TPS",
    "tps_to_pps": "TPS ke PPS", "pps_to_ppk": "PPS ke PPK", "ppk_to_warehouse": "PPK ke gudang",
    "Leg": "Tahap", "From": "Dari", "To": "Ke", "Window": "Jadwal", "Left": "Berangkat", "Arrived": "Tiba",
    "Status": "Status", "on_time": "tepat waktu", "late": "terlambat", "not_arrived": "belum tiba",
    "Planned window": "Jadwal rencana", "Actual": "Kenyataan",
    "Seal events": "Kejadian segel", "Time": "Waktu", "Event": "Kejadian", "Place": "Tempat", "Kind": "Jenis",
    "armed": "dipasang dan aktif", "loop_open": "kawat segel terbuka", "loop_closed": "kawat segel tertutup",
    "lid_open": "tutup kotak dibuka", "lid_closed": "tutup kotak ditutup", "case_open": "casing pelacak dibuka",
    "rearmed": "diaktifkan kembali", "power_restored": "daya pulih", "power_lost": "daya hilang",
    "seal_unauthorised": "segel dibuka tanpa izin", "seal_authorised": "pembukaan segel berizin",
    "seal_event": "tercatat", "case_opened": "casing pelacak dibuka", "tamper_latched": "tanda gangguan",
    "late (learned after the fact)": "terlambat (diketahui kemudian)",
    "Alerts": "Peringatan", "Alert": "Peringatan", "Severity": "Tingkat", "State": "Keadaan",
    "Acknowledged": "Ditangani", "Resolved": "Diselesaikan", "by": "oleh",
    "critical": "kritis", "high": "tinggi", "warning": "waspada", "info": "info",
    "open": "terbuka", "acknowledged": "ditangani", "resolved": "selesai", "withdrawn": "ditarik",
    "forged_frame": "frame palsu", "replayed_frame": "frame diputar ulang", "wrong_tps": "di TPS yang salah",
    "off_corridor": "keluar jalur", "long_stop": "berhenti lama", "silent": "pelacak diam",
    "behind_schedule": "terlambat dari jadwal", "low_battery": "baterai lemah", "arrived": "tiba",
    "seal_numbers_differ": "nomor segel berbeda", "receipt_wrong_place": "serah terima di tempat yang salah",
    "receipt_no_arrival": "serah terima tanpa kedatangan tercatat",
    "Tracker health": "Kondisi pelacak", "Frames received": "Frame diterima",
    "Positions with a fix": "Posisi dengan fix GPS", "First heard": "Pertama terdengar",
    "Last heard": "Terakhir terdengar", "Longest silence": "Jeda terlama",
    "Frames received late (store-and-forward)": "Frame terlambat (simpan-teruskan)",
    "Battery (first, lowest, last)": "Baterai (awal, terendah, akhir)",
    "Rejected frames under its id": "Frame ditolak atas ID-nya", "Pairing": "Pemasangan pelacak",
    "paired": "dipasang", "unpaired": "dilepas", "hours": "jam",
    "Received by": "Diterima oleh", "Witness": "Saksi", "Seal numbers": "Nomor segel", "Condition": "Kondisi",
    "Tracker arrival": "Kedatangan menurut pelacak", "not recorded": "tidak tercatat", "pending": "menunggu",
    "intact": "utuh", "damaged": "rusak", "wet": "basah", "seal_broken": "segel rusak", "other": "lainnya",
    "Custody ledger and signature": "Buku besar pengawasan dan tanda tangan",
    "Ledger entries": "Jumlah entri buku besar", "Head (last entry's hash)": "Hash entri terakhir",
    "Signed checkpoint": "Titik periksa bertanda tangan", "covers entries 0 to {seq}, signed {when}":
        "mencakup entri 0 sampai {seq}, ditandatangani {when}",
    "NOT SIGNED: {why}": "TIDAK BERTANDA TANGAN: {why}", "none yet": "belum ada",
    "Signing key": "Kunci penandatangan", "Public key": "Kunci publik",
    "How to verify": "Cara memeriksa",
    "Ask the election office for this box's bundle (segel ledger export) and check it anywhere, without "
    "a network: segel verify BUNDLE --key PUBLIC_KEY. It says VALID, or which ledger entry was altered, "
    "removed or reordered. The QR code holds the signed checkpoint above; segel verify --qr TEXT --key "
    "PUBLIC_KEY checks its signature, and with the bundle that the bundle holds that head.":
        "Mintalah berkas bundel kotak ini kepada penyelenggara (segel ledger export) dan periksa di mana saja, "
        "tanpa jaringan: segel verify BUNDLE --key KUNCI_PUBLIK. Hasilnya SAH, atau entri buku besar mana yang "
        "diubah, dihapus atau ditukar urutannya. Kode QR memuat titik periksa bertanda tangan di atas; segel "
        "verify --qr TEKS --key KUNCI_PUBLIK memeriksa tanda tangannya, dan bersama bundel, bahwa bundel itu "
        "memuat hash tersebut.",
    "None recorded.": "Tidak ada.", "page {n} of {m}": "halaman {n} dari {m}", "unknown": "tidak diketahui",
    "no plan (no calendar stored in the database)": "tidak ada rencana (kalender tidak tersimpan)",
    "Boxes": "Kotak", "Delivered on time": "Tiba tepat waktu", "Delivered late": "Tiba terlambat",
    "Not delivered": "Tidak tiba", "Returned on time": "Kembali tepat waktu", "Returned late": "Kembali terlambat",
    "Not returned": "Belum kembali", "Incidents": "Insiden", "Boxes of the district": "Kotak di kecamatan ini",
    "Delivered": "Tiba", "Returned": "Kembali", "Receipts": "Serah terima",
    "Critical and high alerts": "Peringatan kritis dan tinggi", "all {n} boxes": "semua {n} kotak",
    "Open": "Terbuka", "around its TPS": "sekitar TPS-nya", "track (fixes)": "jejak (titik posisi)",
    "planned road": "jalan sesuai rencana", "seal opened without authority": "segel dibuka tanpa izin",
    "authorised opening": "pembukaan berizin",
    # what the system writes (plan permits, system resolutions): shown translated
    "voting and counting at its TPS": "pemungutan dan penghitungan suara di TPS-nya",
    "recapitulation at its PPK": "rekapitulasi di PPK-nya", "handover at its PPS": "serah terima di PPS-nya",
    "storage at the warehouse": "penyimpanan di gudang", "system": "sistem", "informational": "informatif",
}
MONTHS_ID = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# Notes the system writes with a number or a place in them: (pattern, Indonesian with the same groups)
SYSTEM_NOTES = (
    (re.compile(r"^heard again \(counter (\d+)\)$"), "terdengar lagi (penghitung {0})"),
    (re.compile(r"^disproved by frame (\d+) received late$"), "terbantah oleh frame {0} yang diterima terlambat"),
    (re.compile(r"^the tracker's arrival at (\S+) was received late$"), "kedatangan pelacak di {0} diterima terlambat"),
)


@dataclass(frozen=True)
class Texts:
    lang: str
    tz: dt.timezone
    zone: str

    def _(self, message: str) -> str:
        if self.lang != "id":
            return message
        if message in ID:
            return ID[message]
        for pat, text in SYSTEM_NOTES:
            m = pat.match(message)
            if m:
                return text.format(*m.groups())
        return message

    def when(self, t: float | None, date_only: bool = False, zone: bool = False) -> str:
        """27 Nov 2024 13.05 (id) / 27 Nov 2024 13:05 (en), in the report's zone."""
        if t is None:
            return "-"
        d = dt.datetime.fromtimestamp(t, self.tz)
        mon = (MONTHS_ID if self.lang == "id" else MONTHS_EN)[d.month - 1]
        day = f"{d.day} {mon} {d.year}"
        if date_only:
            return day
        sep = "." if self.lang == "id" else ":"
        return f"{day} {d.hour:02d}{sep}{d.minute:02d}" + (f" {self.zone}" if zone else "")

    def short(self, t: float | None) -> str:
        """27/11 13.05: for tables where the year is obvious."""
        if t is None:
            return "-"
        d = dt.datetime.fromtimestamp(t, self.tz)
        sep = "." if self.lang == "id" else ":"
        return f"{d.day:02d}/{d.month:02d} {d.hour:02d}{sep}{d.minute:02d}"


def texts(lang: str, tz: dt.timezone, zone: str) -> Texts:
    if lang not in ("id", "en"):
        raise ValueError(f"language {lang!r}: reports are in id (Bahasa Indonesia) or en (English)")
    return Texts(lang, tz, zone)
