"""What the dashboard tests need to know about InfluxQL and Grafana: the schema check of a
query, the variable interpolation Grafana's InfluxDB data source does, and the few table
transformations our panels use (an emulation, for checking what a panel would show)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from segel.influx import schema

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | "(?P<ident>(?:[^"\\]|\\.)*)"
  | '(?P<string>(?:[^'\\]|\\.)*)'
  | (?<==~\s)/(?P<regex>(?:[^/\\]|\\.)*)/ | (?<==~)/(?P<regex2>(?:[^/\\]|\\.)*)/
  | (?P<duration>\d+(?:ns|ms|u|s|m|h|d|w)\b)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<var>\$\w+)
  | (?P<word>[A-Za-z_]\w*)
  | (?P<op>=~|!~|!=|<>|>=|<=|[=<>(),*+-])
""", re.VERBOSE)

KEYWORDS = {"select", "from", "where", "and", "or", "group", "by", "as", "fill", "none", "null", "time", "now",
            "true", "false", "show", "tag", "values", "with", "key", "order", "desc", "asc", "limit", "previous",
            "linear"}
ANY_TYPE = {"last", "first", "count", "distinct"}
NUMERIC = {"mean", "sum", "max", "min", "median", "non_negative_derivative", "derivative", "spread", "stddev"}


class QueryError(AssertionError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokens(q: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        if m is None:
            raise QueryError(f"cannot read {q[pos:pos + 30]!r} in {q!r}")
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(Token("regex" if kind == "regex2" else kind, m.group(kind)))
        pos = m.end()
    return out


def check(q: str) -> set[str]:
    """Raises QueryError unless every identifier in `q` is a measurement, a tag or field of every
    measurement the query reads, or an alias it defines; returns the measurements read."""
    toks = tokens(q)
    measurements: list[str] = []
    aliases: set[str] = set()
    for i, t in enumerate(toks):
        if t.kind == "word" and t.text.lower() not in KEYWORDS | ANY_TYPE | NUMERIC:
            raise QueryError(f"bare word {t.text!r} in {q!r}: quote identifiers, use known functions")
        prev = toks[i - 1] if i else None
        if t.kind == "ident" and prev is not None:
            if prev.kind == "word" and prev.text.lower() == "from":
                measurements.append(t.text)
            elif prev.text == "," and measurements and _in_from_list(toks, i):
                measurements.append(t.text)
            elif prev.kind == "word" and prev.text.lower() == "as":
                aliases.add(t.text)
    unknown = [m for m in measurements if m not in schema.MEASUREMENTS]
    if unknown:
        raise QueryError(f"unknown measurement(s) {unknown} in {q!r}")
    if not measurements:
        raise QueryError(f"no measurement in {q!r}")
    ms = [schema.MEASUREMENTS[m] for m in measurements]
    group_by = False
    for i, t in enumerate(toks):
        if t.kind == "word" and t.text.lower() == "group":
            group_by = True
        if t.kind != "ident" or t.text in measurements or t.text in aliases:
            continue
        for m in ms:
            if t.text not in m.tags and t.text not in m.fields:
                raise QueryError(f"{t.text!r} is neither a tag nor a field of {m.name!r} in {q!r}")
        if group_by and not all(t.text in m.tags for m in ms):
            raise QueryError(f"GROUP BY {t.text!r}: not a tag of {measurements} in {q!r}")
        fn = toks[i - 2].text.lower() if i >= 2 and toks[i - 1].text == "(" else ""
        if fn in NUMERIC:
            for m in ms:
                if m.fields.get(t.text) not in (schema.FLOAT, schema.INT):
                    raise QueryError(f"{fn}({t.text!r}) over a non-numeric field of {m.name!r} in {q!r}")
    show_key = [toks[i + 2].text for i, t in enumerate(toks[:-2]) if t.kind == "word" and t.text.lower() == "key"]
    for k in show_key:
        if not all(k in m.tags for m in ms):
            raise QueryError(f"WITH KEY = {k!r} is not a tag of {measurements}")
    return set(measurements)


def _in_from_list(toks: list[Token], i: int) -> bool:
    j = i - 1
    while j >= 1 and toks[j].text == "," and toks[j - 1].kind == "ident":
        j -= 2
    return j >= 0 and toks[j].kind == "word" and toks[j].text.lower() == "from"


# ---- Grafana's interpolation ------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    name: str
    values: tuple[str, ...]  # selected values; ("$__all",) for All
    multi_or_all: bool = False
    all_value: str | None = None


def regex_escape(v: str) -> str:
    """Grafana's escaping of a value used in a regex (multi-value or All variables)."""
    return re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m.group(0), v)


def interpolate(q: str, time_from_ms: int, time_to_ms: int, interval: str, variables: Iterable[Variable]) -> str:
    """$timeFilter, $__interval and template variables, rendered as Grafana renders them for InfluxQL."""
    out = q.replace("$timeFilter", f"time >= {time_from_ms}ms and time <= {time_to_ms}ms")
    out = out.replace("$__interval", interval).replace("$interval", interval)
    for v in sorted(variables, key=lambda v: -len(v.name)):
        if v.values == ("$__all",):
            text = v.all_value if v.all_value is not None else "(" + "|".join(v.values) + ")"
        elif v.multi_or_all:
            vals = [regex_escape(x) for x in v.values]
            text = vals[0] if len(vals) == 1 else "(" + "|".join(vals) + ")"
        else:
            text = v.values[0]
        out = out.replace(f"${v.name}", text).replace(f"${{{v.name}}}", text)
    return out


# ---- the transformations our panels use --------------------------------------------------------

Table = list[dict[str, object]]


def to_table(result: dict) -> Table:
    """An InfluxDB 1.x /query answer as Grafana's table format would show it (tags as columns)."""
    rows: Table = []
    for series in result.get("series", []):
        for values in series["values"]:
            row = dict(series.get("tags") or {})
            row.update(zip(["Time" if c == "time" else c for c in series["columns"]], values))
            rows.append(row)
    return rows


def transform(rows: Table, transformations: list[dict]) -> Table:
    for tr in transformations:
        opts = tr.get("options", {})
        if tr["id"] == "sortBy":
            s = opts["sort"][0]
            rows = sorted(rows, key=lambda r: (r.get(s["field"]) is None, r.get(s["field"])), reverse=bool(s.get("desc")))
        elif tr["id"] == "groupBy":
            keys = [f for f, c in opts["fields"].items() if c["operation"] == "groupby"]
            aggs = {f: c["aggregations"] for f, c in opts["fields"].items() if c["operation"] == "aggregate"}
            groups: dict[tuple, list[dict]] = {}
            for r in rows:
                groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
            out: Table = []
            for key, members in groups.items():
                row: dict[str, object] = dict(zip(keys, key))
                for f, calcs in aggs.items():
                    for c in calcs:
                        vals = [m.get(f) for m in members]
                        row[f"{f} ({c})"] = {"last": lambda v: v[-1], "count": len}[c](vals)
                out.append(row)
            rows = out
        elif tr["id"] == "filterByValue":
            for f in opts["filters"]:
                assert f["config"]["id"] == "equal", f
                rows = [r for r in rows if r.get(f["fieldName"]) == f["config"]["options"]["value"]]
        elif tr["id"] in ("merge", "organize"):
            pass  # layout only
        else:
            raise AssertionError(f"transformation {tr['id']} is not emulated")
    return rows
