"""The catalogs: every string people read is in the Indonesian catalog and translated; formats and zones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from segel import i18n

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def source_messages(root: Path = GATEWAY / "segel") -> dict[str, str]:
    """msgid -> where it was found, exactly as tools/i18n-update.sh extracts them (gateway/babel.cfg)."""
    out: dict[str, str] = {}
    for fname, lineno, message, _comments, _ctx in extract_from_dir(str(root), METHODS, keywords=KEYWORDS):
        mid = message if isinstance(message, str) else message[0]
        if mid:
            out.setdefault(mid, f"{fname}:{lineno}")
    return out


def catalog(lang: str = "id") -> dict[str, object]:
    with i18n.po_path(lang).open("rb") as f:
        po = read_po(f, locale=lang)
    return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in po if m.id}


def test_the_babel_config_matches_what_the_test_extracts() -> None:
    cfg = (GATEWAY / "babel.cfg").read_text()
    assert "[python: **.py]" in cfg and "[jinja2: **/templates/**.html]" in cfg


def test_every_source_string_is_in_the_indonesian_catalog_and_translated() -> None:
    src = source_messages()
    assert len(src) > 20, "the extraction found (almost) nothing: the test would prove nothing"
    cat = catalog("id")
    missing = [f"{where}: {mid!r}" for mid, where in sorted(src.items(), key=lambda kv: kv[1]) if mid not in cat]
    untranslated = [mid for mid, m in cat.items() if mid in src and (
        "fuzzy" in m.flags or not all(s.strip() for s in ([m.string] if isinstance(m.string, str) else m.string)))]
    assert not missing, ("strings missing from the Indonesian catalog (run bash tools/i18n-update.sh and translate):\n"
                         + "\n".join(missing))
    assert not untranslated, "untranslated or fuzzy in the Indonesian catalog:\n" + "\n".join(untranslated)


def test_placeholders_survive_translation() -> None:
    pat = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")
    for mid, m in catalog("id").items():
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        for s in strings:
            assert set(pat.findall(s)) == set(pat.findall(mid)), (mid, s)


def test_the_check_fails_on_a_new_untranslated_string(tmp_path: Path) -> None:
    """A string added without a translation is caught (the check is not vacuous)."""
    pkg = tmp_path / "segel"
    (pkg / "console" / "templates").mkdir(parents=True)
    (pkg / "new.py").write_text('def f(t):\n    return t._("A brand new string nobody translated")\n')
    (pkg / "console" / "templates" / "x.html").write_text('<p>{{ _("Sign in") }}</p>')
    src = source_messages(pkg)
    assert set(src) == {"A brand new string nobody translated", "Sign in"}
    assert "A brand new string nobody translated" not in catalog("id")
    assert "Sign in" in catalog("id")


def test_translator_indonesian_is_the_default() -> None:
    t = i18n.translator(None, None)
    assert t.lang == "id" and t._("Sign in") == "Masuk"
    assert i18n.translator("en")._("Sign in") == "Sign in"
    assert i18n.translator("fr").lang == "id"


def test_local_times_in_wita_wib_wit() -> None:
    ts = 1732683900  # 2024-11-27 05:05 UTC
    assert i18n.translator("id", "WITA").datetime(ts) == "27 Nov 2024 13.05 WITA"
    assert i18n.translator("id", "Asia/Jakarta").datetime(ts) == "27 Nov 2024 12.05 WIB"
    assert i18n.translator("en", "WIT").datetime(ts) == "27 Nov 2024 14:05 WIT"
    assert i18n.translator("en", "Europe/Berlin").datetime(ts).endswith("UTC+01:00")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        i18n.zone("Mars/Base")


def test_numbers_and_relative_times() -> None:
    idt, en = i18n.translator("id"), i18n.translator("en")
    assert idt.number(1402) == "1.402" and en.number(1402) == "1,402"
    assert idt.number(3.5, 1) == "3,5"
    assert idt.ago(1000, 1180) == "3 menit yang lalu"
    assert en.ago(1000, 1180) == "3 minutes ago"


def test_accept_language() -> None:
    assert i18n.negotiate("en-US,en;q=0.9") == "en"
    assert i18n.negotiate("fr, id;q=0.5, en;q=0.4") == "id"
    assert i18n.negotiate("") == "id"
    assert i18n.language("en_GB") == "en"


def test_no_translation_call_hides_inside_an_f_string() -> None:
    """Babel does not look inside f-strings: a `_("...")` there would never reach the catalog."""
    import io
    import tokenize

    bad = []
    for f in (GATEWAY / "segel").rglob("*.py"):
        for tok in tokenize.generate_tokens(io.StringIO(f.read_text()).readline):
            if tok.type == tokenize.STRING and tok.string[:2].lower() in ('f"', "f'", 'rf', 'fr') and \
                    re.search(r"\b(_|gettext|ngettext)\(", tok.string):
                bad.append(f"{f.relative_to(GATEWAY)}:{tok.start[0]}")
    assert not bad, "move these translations out of the f-string: " + ", ".join(bad)
