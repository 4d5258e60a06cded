"""A box's custody bundle: its ledger entries, checkpoints and public keys in one file, and its offline verifier.

`build(conn, box)` makes the bundle, `dumps()` writes it in its one canonical byte form, and
`verify(data, trusted_keys, extra_checkpoints)` checks a bundle with nothing but the bundle and
the public key: it recomputes the chain, checks every checkpoint's signature, and compares the
chain with the hashes the checkpoints published. It says "valid", or which entry was altered,
removed or reordered. The format is in docs/custody.md so another program can verify it too.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from segel.custody import checkpoints as cp
from segel.custody.ledger import GENESIS, entry_hash, export, ms
from segel.i18n import N_

SCHEMA = "segel.bundle/1"
ENTRY_KEYS = ("seq", "at_ms", "device_ms", "event", "body", "prev", "hash")
NEARBY = 20  # how far apart two swapped entries may be for the verifier to name them as swapped


@dataclass(frozen=True)
class Problem:
    """What is wrong: `template` (a source string of the catalog) with its `params`; `message` in English."""

    position: int  # index in the bundle's entry list
    seq: int | None  # the entry's number in the chain (what to name to a reader)
    kind: str  # altered | removed | reordered | truncated | signature | conflict | format
    template: str
    params: dict = field(default_factory=dict, compare=False)

    @property
    def message(self) -> str:
        return self.template.format(**self.params)


def P(position: int, seq: int | None, kind: str, template: str, **params: object) -> Problem:  # noqa: N802
    return Problem(position, seq, kind, template, params)


@dataclass
class Result:
    box: str = ""
    entries: int = 0
    head: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    notes: list[tuple[str, dict]] = field(default_factory=list)  # (template, params)
    signed: int = 0  # checkpoints whose signature verified
    unsigned: int = 0  # checkpoints stored without a signature (key missing at the time)
    covered: int = -1  # highest entry a verified checkpoint signed
    covered_at_ms: int | None = None  # when that checkpoint was signed
    keys: set[str] = field(default_factory=set)
    bundle_signed: bool = False
    span_ms: tuple[int, int] | None = None  # first and last entry's receive time
    tz: str = "UTC"
    tz_offset_min: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


# ---- building and writing ------------------------------------------------------------------------


def build(conn: sqlite3.Connection, box: str, instance: str = "", now: float | None = None,
          tz_name: str = "UTC", tz_offset_min: int = 0, key: cp.SigningKey | None = None) -> dict:
    """The bundle of one box; signed by `key` (the instance's) when given."""
    import time

    cps = cp.of_box(conn, box)
    keys = cp.public_keys(conn)
    used = {json.loads(c["payload"]).get("key") for c in cps}
    if key is not None:
        used.add(key.key_id)
        keys[key.key_id] = key.public_hex
    doc = {"schema": SCHEMA, "box": box, "instance": instance, "exported_at_ms": ms(time.time() if now is None else now),
           "tz": tz_name, "tz_offset_min": tz_offset_min,
           "public_keys": {k: v for k, v in keys.items() if k in used}, "checkpoints": cps, "entries": export(conn, box),
           "signature": None}
    if key is not None:
        doc["signature"] = {"key": key.key_id, "value": key.sign(signed_part(dumps(doc)))}
    return doc


def _obj(d: dict) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


HEADER = ("schema", "box", "instance", "exported_at_ms", "tz", "tz_offset_min", "public_keys")
SIGNATURE_LINE = b'\n"signature":'


def dumps(bundle: dict) -> bytes:
    """The canonical bytes: one header field per line, then one checkpoint and one entry per line,
    and last the signature line (over every byte before it: `signed_part`)."""
    head = [f"{json.dumps(k)}:{_obj(bundle[k]) if isinstance(bundle[k], dict) else json.dumps(bundle[k], ensure_ascii=False)}"
            for k in HEADER]
    lines = ["{" + ",\n".join(head) + ","]
    lines.append('"checkpoints":[' + ",\n".join(_obj(c) for c in bundle["checkpoints"]) + "],")
    lines.append('"entries":[\n' + ",\n".join(_obj({k: e[k] for k in ENTRY_KEYS}) for e in bundle["entries"]) + "\n],")
    sig = bundle.get("signature")
    lines.append('"signature":' + ("null" if sig is None else _obj(sig)) + "}")
    return ("\n".join(lines) + "\n").encode()


def signed_part(data: bytes) -> bytes:
    """The bytes a bundle's signature covers: everything before its last line (`"signature":...`)."""
    at = data.rfind(SIGNATURE_LINE)
    return data[:at + 1] if at >= 0 else data


# ---- reading -------------------------------------------------------------------------------------


class BundleError(ValueError):
    """Not a readable bundle (truncated, not JSON, fields missing); says where (`template`, `params`)."""

    def __init__(self, template: str, **params: object) -> None:
        super().__init__(template.format(**params))
        self.template = template
        self.params = params


def loads(data: bytes) -> dict:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(N_("byte {at}: not UTF-8 text (the file was altered or is not a bundle)"), at=e.start) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BundleError(N_("line {line}, column {col}: not valid JSON ({why}): the file was cut short or edited"),
                          line=e.lineno, col=e.colno, why=e.msg) from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise BundleError(N_("not a custody bundle (schema is not {schema})"), schema=SCHEMA)
    for k, kind in (("box", str), ("instance", str), ("exported_at_ms", int), ("tz", str), ("tz_offset_min", int),
                    ("entries", list), ("checkpoints", list), ("public_keys", dict)):  # signature: dict or null
        if not isinstance(doc.get(k), kind):
            raise BundleError(N_("field {name} is missing or not a {type}"), name=k, type=kind.__name__)
    for i, ent in enumerate(doc["entries"]):
        if not isinstance(ent, dict) or any(k not in ent for k in ENTRY_KEYS):
            raise BundleError(N_("entry at position {i}: fields missing (need {fields})"), i=i, fields=", ".join(ENTRY_KEYS))
        if not (isinstance(ent["seq"], int) and isinstance(ent["at_ms"], int) and isinstance(ent["body"], str)
                and isinstance(ent["event"], str) and isinstance(ent["prev"], str) and isinstance(ent["hash"], str)
                and (ent["device_ms"] is None or isinstance(ent["device_ms"], int))):
            raise BundleError(N_("entry at position {i}: a field has the wrong type"), i=i)
    return doc


def first_difference(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


# ---- the chain as stored --------------------------------------------------------------------------


def _h(box: str, e: dict, seq: int, prev: str) -> str:
    return entry_hash(prev, box, seq, e["at_ms"], e["device_ms"], e["event"], e["body"])


def check_chain(box: str, entries: list[dict]) -> tuple[list[Problem], str]:
    """Problems of a chain as stored (each entry's own hash, the links, the numbering), and the head
    of its intact beginning. Finds the original place of each entry from the links it still holds."""
    n = len(entries)
    by_hash = {e["hash"]: i for i, e in enumerate(entries)}
    link_pos: dict[int, int | None] = {}

    def pos_by_links(i: int) -> int | None:  # the entry's number by following its links back to the start
        path: list[int] = []
        j: int | None = i
        while j is not None and j not in link_pos:
            if j in path:  # a loop: cannot happen unless hashes were forged
                for k in path:
                    link_pos[k] = None
                return None
            path.append(j)
            p = entries[j]["prev"]
            j = None if p == GENESIS else by_hash.get(p, -1)
            if j == -1:
                for k in path:
                    link_pos[k] = None
                return None
        base = -1 if j is None else link_pos[j]
        for k in reversed(path):
            base = None if base is None else base + 1
            link_pos[k] = base
        return link_pos[i]

    original: dict[int, int] = {}  # position -> original number, for entries intact in themselves
    for i, e in enumerate(entries):
        if _h(box, e, e["seq"], e["prev"]) == e["hash"]:
            original[i] = e["seq"]
            continue
        s = pos_by_links(i)
        if s is not None and _h(box, e, s, e["prev"]) == e["hash"]:
            original[i] = s  # intact, but renumbered
    problems: list[Problem] = []
    reported: set[int] = set()
    for i, e in enumerate(entries):
        if i in original:
            continue
        j = next((j for j in range(max(0, i - NEARBY), min(n, i + NEARBY + 1)) if j != i and
                  _h(box, e, entries[j]["seq"], entries[j]["prev"]) == entries[j]["hash"]), None)
        if j is not None:
            problems.append(P(i, e["seq"], "reordered", N_("entry {n} holds the content of entry {m}: entries {a} and "
                                                           "{b} were swapped"), n=e["seq"], m=entries[j]["seq"],
                              a=min(i, j), b=max(i, j)))
            reported.add(j)
        elif i not in reported:
            problems.append(P(i, e["seq"], "altered", N_("entry {n} ({event}) was altered: its content no longer "
                                                         "matches its hash"), n=e["seq"], event=e["event"]))
    moved = {i: s for i, s in original.items() if entries[i]["seq"] != s}
    for i, s in sorted(moved.items()):
        if moved.get(s) == i:  # each stands where the other belongs
            if i < s:
                problems.append(P(i, i, "reordered", N_("entries {a} and {b} were swapped (reordered)"), a=i, b=s))
            continue
        problems.append(P(i, entries[i]["seq"], "reordered", N_("entry {n} of the chain stands at position {pos} "
                                                                "numbered {m}: the entries were reordered"),
                          n=s, pos=i, m=entries[i]["seq"]))
    numbers = sorted(set(original.values()) | {e["seq"] for i, e in enumerate(entries) if i not in original})
    expected = 0
    for s in numbers:
        if s > expected:
            pos = next((i for i, e in enumerate(entries) if original.get(i, e["seq"]) == s), 0)
            if s == expected + 1:
                problems.append(P(pos, expected, "removed", N_("entry {n} is missing (removed): entry {next} follows "
                                                               "entry {prev}"), n=expected, next=s, prev=expected - 1))
            else:
                problems.append(P(pos, expected, "removed", N_("entries {a} to {b} are missing (removed): entry "
                                                               "{next} follows entry {prev}"), a=expected, b=s - 1,
                                  next=s, prev=expected - 1))
        expected = max(expected, s + 1)
    # links between intact neighbours (an entry inserted with a made-up prev)
    for i, e in enumerate(entries):
        if i in original and i > 0 and (i - 1) in original and original[i] == original[i - 1] + 1 \
                and e["prev"] != entries[i - 1]["hash"]:
            problems.append(P(i, e["seq"], "altered", N_("entry {n} does not link to entry {prev}"), n=e["seq"],
                              prev=e["seq"] - 1))
    problems.sort(key=lambda p: (p.position, p.kind))
    first = problems[0].position if problems else n
    return problems, entries[first - 1]["hash"] if first > 0 else GENESIS


# ---- against the checkpoints ----------------------------------------------------------------------


def _checkpoints(res: Result, box: str, envelopes: list[dict], keys: dict[str, str], trusted: set[str] | None
                 ) -> dict[int, tuple[str, int]]:
    """Verify each checkpoint; returns {entry number: (published hash, checkpoint index)}."""
    published: dict[int, tuple[str, int]] = {}
    for n, env in enumerate(envelopes):
        try:
            doc = json.loads(env["payload"])
            seq, since, hashes = int(doc["seq"]), int(doc["since"]), list(doc["hashes"])
        except (KeyError, TypeError, ValueError):
            res.problems.append(P(0, None, "format", N_("checkpoint {c}: unreadable payload"), c=n))
            continue
        if doc.get("box") != box:
            continue  # another box's (a published file holds every box)
        if env.get("signature") is None:
            res.unsigned += 1
            continue
        kid = doc.get("key")
        pub = keys.get(kid or "")
        if trusted is not None and kid not in trusted:
            res.problems.append(P(0, seq, "signature", N_("checkpoint {c} (entry {n}) is signed by key {key}, not by "
                                                          "the key you gave"), c=n, n=seq, key=kid))
            continue
        if pub is None or not cp.checkpoint_ok(pub, env):
            res.problems.append(P(0, seq, "signature", N_("checkpoint {c} (entry {n}): the signature does not verify "
                                                          "with key {key}: the checkpoint was forged or altered"),
                                  c=n, n=seq, key=kid))
            continue
        if len(hashes) != seq - since + 1 or hashes[-1] != doc.get("head"):
            res.problems.append(P(0, seq, "format", N_("checkpoint {c}: its hash list does not match its head"), c=n))
            continue
        res.signed += 1
        res.keys.add(str(kid))
        if seq >= res.covered:
            res.covered, res.covered_at_ms = seq, doc.get("at_ms")
        for k, h in enumerate(hashes):
            old = published.get(since + k)
            if old is not None and old[0] != h:
                res.problems.append(P(0, since + k, "conflict", N_("entry {n}: checkpoints {c} and {d} were both signed "
                                                                   "but publish different hashes (two histories)"),
                                      n=since + k, c=old[1], d=n))
            published[since + k] = (h, n)
    return published


def _against_published(res: Result, box: str, entries: list[dict], published: dict[int, tuple[str, int]]) -> None:
    """The chain recomputed from the entries' content, compared with the published hashes: catches a
    chain rewritten with fresh hashes after publication, and names the entry."""
    n = len(entries)
    chain: list[str] = []
    prev = GENESIS
    for i, e in enumerate(entries):
        prev = _h(box, e, i, prev)
        chain.append(prev)
    bad = next((s for s in sorted(published) if s < n and chain[s] != published[s][0]), None)
    if bad is None:
        last = max(published) if published else -1
        if last >= n:
            res.problems.append(P(n, n, "truncated", N_("entries {a} to {b} were removed: checkpoint {c} signed {m} "
                                                        "entries, the bundle has {a}"), a=n, b=last, c=published[last][1],
                                  m=last + 1))
        return
    p = {s: h for s, (h, _) in published.items()}
    before = p.get(bad - 1, GENESIS if bad == 0 else chain[bad - 1])

    def fits(i: int, s: int, prev: str) -> bool:
        return i < n and s in p and _h(box, entries[i], s, prev) == p[s]
    cpn = published[bad][1]
    if fits(bad, bad + 1, p.get(bad, "")) and fits(bad + 1, bad, before):
        kind, msg = "reordered", N_("entries {n} and {m} were swapped (reordered): the chain was recomputed after "
                                    "checkpoint {c} was published, and no longer matches it")
    elif fits(bad, bad + 1, p.get(bad, "")):
        kind, msg = "removed", N_("entry {n} was removed: the chain was recomputed after checkpoint {c} was "
                                  "published, and no longer matches it")
    elif fits(bad + 1, bad + 1, p.get(bad, "")) or (bad == n - 1 and bad + 1 not in p):
        kind, msg = "altered", N_("entry {n} ({event}) was altered: the chain was recomputed after checkpoint {c} "
                                  "was published, and no longer matches it")
    elif fits(bad + 1, bad, before):
        kind, msg = "altered", N_("an entry was inserted before entry {n}: the chain was recomputed after checkpoint "
                                  "{c} was published, and no longer matches it")
    else:
        kind, msg = "altered", N_("the entries from {n} on differ from what checkpoint {c} published (altered, "
                                  "removed or reordered)")
    res.problems.append(P(bad, bad, kind, msg, n=bad, m=bad + 1, c=cpn, event=entries[bad]["event"] if bad < n else ""))


def _bundle_signature(res: Result, doc: dict, data: bytes, keys: dict[str, str], trusted: set[str] | None) -> None:
    sig = doc.get("signature")
    if sig is None:
        res.notes.append((N_("the bundle itself is not signed (exported without the signing key): its header "
                             "(instance, export time) is not protected; entries and checkpoints are checked all the "
                             "same"), {}))
        return
    if not isinstance(sig, dict) or not isinstance(sig.get("key"), str) or not isinstance(sig.get("value"), str):
        res.problems.append(P(0, None, "format", N_("the bundle's signature field is malformed")))
        return
    if trusted is not None and sig["key"] not in trusted:
        res.problems.append(P(0, None, "signature", N_("the bundle is signed by key {key}, not by the key you gave"),
                              key=sig["key"]))
        return
    pub = keys.get(sig["key"])
    if pub is None or not cp.signature_ok(pub, signed_part(bytes(data)), sig["value"]):
        res.problems.append(P(0, None, "signature", N_("the bundle's signature does not verify: the file was altered "
                                                       "after it was exported")))
        return
    res.keys.add(sig["key"])
    res.bundle_signed = True


def verify(data: bytes | dict, trusted_keys: list[str] | None = None, extra_checkpoints: list[dict] | None = None,
           strict_bytes: bool = True) -> Result:
    """Verify a bundle (its bytes, or a parsed dict). trusted_keys: public keys (hex) the reader got
    from elsewhere (a report, the election office); None = the bundle's own keys (said in the notes).
    extra_checkpoints: checkpoint envelopes from the reader's own copy (the published file)."""
    res = Result()
    if isinstance(data, (bytes, bytearray)):
        try:
            doc = loads(bytes(data))
        except BundleError as e:
            res.problems.append(P(0, None, "format", e.template, **e.params))
            return res
        if strict_bytes:
            try:
                canon = dumps(doc)
            except (KeyError, TypeError, AttributeError):
                canon = b""
            if canon != bytes(data):
                at = first_difference(canon, bytes(data))
                line = bytes(data)[:at].count(b"\n") + 1
                res.problems.append(P(0, None, "format", N_("byte {at} (line {line}) differs from the bundle as Segel "
                                                            "writes it: the file was edited"), at=at, line=line))
    else:
        doc = data
    box, entries = doc["box"], doc["entries"]
    res.box, res.entries = box, len(entries)
    res.tz, res.tz_offset_min = str(doc.get("tz", "UTC")), int(doc.get("tz_offset_min", 0))
    if entries:
        res.span_ms = (entries[0]["at_ms"], entries[-1]["at_ms"])
    problems, res.head = check_chain(box, entries)
    res.problems += problems
    keys = dict(doc["public_keys"])
    trusted: set[str] | None = None
    if trusted_keys:
        keys.update({cp.key_id(k): k for k in trusted_keys})
        trusted = {cp.key_id(k) for k in trusted_keys}
    else:
        res.notes.append((N_("checked with the key inside the bundle: compare its id with the key the election "
                             "office published (segel verify --key)"), {}))
    _bundle_signature(res, doc, data if isinstance(data, (bytes, bytearray)) else dumps(doc), keys, trusted)
    published = _checkpoints(res, box, list(doc["checkpoints"]) + list(extra_checkpoints or []), keys, trusted)
    if not problems:
        _against_published(res, box, entries, published)
    if res.covered < len(entries) - 1 and res.signed:
        res.notes.append((N_("entries {a} to {b} are newer than the last signed checkpoint"),
                          {"a": res.covered + 1, "b": len(entries) - 1}))
    if res.unsigned:
        res.notes.append((N_("{n} checkpoint(s) were stored unsigned (no signing key at the time)"), {"n": res.unsigned}))
    res.problems.sort(key=lambda q: (q.position, q.kind))
    return res


def describe(res: Result, lang: str = "en") -> list[str]:
    """What `segel verify` prints, in `lang`: the verdict first, then what was checked."""
    import datetime as dt

    from segel import i18n

    _ = i18n.translator(lang)._
    tz = dt.timezone(dt.timedelta(minutes=res.tz_offset_min))

    def local(t_ms: int | None) -> str:
        return "-" if t_ms is None else dt.datetime.fromtimestamp(t_ms / 1000, tz).strftime(f"%Y-%m-%d %H:%M {res.tz}")

    def say(p: Problem) -> str:
        return _(p.template).format(**p.params)
    out = []
    if res.problems:
        out.append(_("INVALID: {problem}").format(problem=say(res.problems[0])))
        out += [_("  also: {problem}").format(problem=say(p)) for p in res.problems[1:10]]
        if len(res.problems) > 10:
            out.append(_("  ... and {n} more").format(n=len(res.problems) - 10))
    elif res.signed == 0:
        out.append(_("NOT SIGNED: the chain is intact, but no checkpoint signed by the key covers it, so nothing "
                     "shows it was not rewritten"))
    else:
        out.append(_("VALID"))
    span = _(" ({first} to {last})").format(first=local(res.span_ms[0]), last=local(res.span_ms[1])) \
        if res.span_ms else ""
    out.append(_("box {box}: {n} ledger entries{span}").format(box=res.box, n=res.entries, span=span))
    if not res.problems:
        out.append(_("chain: intact, head {head}").format(head=res.head))
    if res.signed:
        out.append(_("checkpoints: {n} signed by key {keys}, all verify; the last covers entry {seq}, signed "
                     "{when}").format(n=res.signed, keys=", ".join(sorted(res.keys)), seq=res.covered,
                                      when=local(res.covered_at_ms)))
    out.append(_("bundle signature: valid") if res.bundle_signed else _("bundle signature: none"))
    out += [_("note: {note}").format(note=_(t).format(**params)) for t, params in res.notes]
    return out
