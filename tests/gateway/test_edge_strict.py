"""Strict parsing at the edge and safe lines at the end (issue 12): every malformed message is a
PayloadError with its reason (never another exception), identifiers keep to their alphabet, and no
value a sender chooses can put a second line into InfluxDB's line protocol."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segel.edge import payloads, topics
from segel.edge.payloads import PayloadError, to_uplink
from segel.ids import is_name
from segel.influx import schema

FRAME = bytes(range(24))
UP = topics.bridge_up("ppk-64.08.01")


def up(**fields: object) -> bytes:
    return json.dumps({"frame": FRAME.hex(), **fields}).encode()


@pytest.mark.parametrize("payload, reason, says", [
    (b'{"frame": "00", "rssi": 1e400}', "malformed", "finite"),
    (b'{"frame": "00", "snr": NaN}', "malformed", "NaN"),
    (b'{"frame": "00", "rx_time": Infinity}', "malformed", "Infinity"),
    (up(freq_khz=10 ** 40), "malformed", "out of range"),
    (up(sf=13), "malformed", "out of range"),
    (up(rssi=True), "malformed", "must be a number"),
    (up(freq_khz=921400.5), "malformed", "whole number"),
    (up(sf="10"), "malformed", "must be a number"),
    (b'{"frame": "00", "x": ' + b"[" * 10 + b"]" * 10 + b"}", "malformed", "deeper than 4"),
    (b"[" * 100_000, "oversize", "more than the 4096"),
    (up(base_id="x" * 5000), "oversize", "more than the 4096"),
    (b'{"frame": "00", "base_id": "\xc3\x28"}', "malformed", "not UTF-8"),
    (b'{"frame": "00", "frame": "01"}', "malformed", "appears twice"),
    (b'"just text"', "malformed", "must be a JSON object"),
    (b"{not json", "malformed", "not JSON"),
    (b'{"frame": 5}', "malformed", '"frame": "<hex>"'),
    (up(frame="0g"), "malformed", "not hex"),
    (up(frame="00 11"), "malformed", "not hex"),
    (up(frame="ab" * 300), "oversize", "more than a frame"),
    (up(crc_ok="yes"), "malformed", "true or false"),
    (up(crc_ok=False), "malformed", "CRC error"),
    (up(base_id="b1\nmeasurement,tag=x field=1i 0"), "bad_name", "not a valid name"),
    (up(base_id="a b"), "bad_name", "not a valid name"),
    (up(base_id=["b1"]), "bad_name", "must be text"),
    (up(bridge_id="kpu-1"), "wrong_topic", "names bridge 'kpu-1'"),
])
def test_each_malformed_bridge_uplink_has_its_reason(payload: bytes, reason: str, says: str) -> None:
    with pytest.raises(PayloadError) as e:
        to_uplink(UP, payload, 0.0)
    assert e.value.reason == reason and says in e.value.detail, e.value.detail


@pytest.mark.parametrize("topic, payload, reason", [
    ("segel/up/ZZZZZZ", FRAME, "bad_name"),
    ("segel/up/00010", FRAME, "bad_name"),
    ("segel/up/000101", b"\x11" * 256, "oversize"),
    ("segel/bridge/a b/up", up(), "bad_name"),
    ("segel/bridge/" + "x" * 300 + "/up", up(), "oversize"),
    ("segel/elsewhere", FRAME, "malformed"),
])
def test_topics_are_checked_before_anything_is_built(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as e:
        to_uplink(topic, payload, 0.0)
    assert e.value.reason == reason


def test_a_good_bridge_uplink_reads_all_its_metadata() -> None:
    u = to_uplink(UP, up(rssi=-101, snr=-7.25, base_id="b00001", bridge_id="ppk-64.08.01", freq_khz=921400, sf=10,
                         rx_time=1_732_600_000.5, crc_ok=True, extension={"any": [1, 2]}), 5.0)
    assert u.frame == FRAME and u.source and u.source.id == "ppk-64.08.01"
    m = u.meta
    assert m and (m.rssi, m.snr, m.base_id, m.freq_khz, m.sf, m.rx_time) == (-101.0, -7.25, "b00001", 921400, 10,
                                                                           1_732_600_000.5)
    assert isinstance(m.freq_khz, int) and isinstance(m.rssi, float)


def test_bridge_status_is_read_as_strictly() -> None:
    t = topics.bridge_status("hill-1")
    ok = payloads.bridge_status(t, json.dumps({"bridge_id": "hill-1", "bases": {"b00001": {"rx_packets": 3}}}).encode())
    assert ok["bases"]["b00001"]["rx_packets"] == 3
    assert payloads.bridge_status(t, b'{"bridge_id": "hill-1", "online": false}')["online"] is False
    for bad, reason in [(b'{"bases": {"b\\nx": {}}}', "bad_name"), (b'{"bridge_id": "other"}', "wrong_topic"),
                        (b'{"bases": [1]}', "malformed"), (b'{"bases": ' + b'{"a": ' * 9 + b"1" + b"}" * 9 + b"}",
                                                           "malformed")]:
        with pytest.raises(PayloadError) as e:
            payloads.bridge_status(t, bad)
        assert e.value.reason == reason


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["frame", "rssi", "snr", "base_id", "bridge_id", "freq_khz", "sf",
                                            "rx_time", "crc_ok", "other"]), JSON, max_size=9))
def test_any_json_is_an_uplink_or_a_payload_error(doc: dict) -> None:
    try:
        payload = json.dumps(doc).encode()
    except ValueError:
        return
    try:
        u = to_uplink(UP, payload, 0.0)
    except PayloadError as e:
        assert e.reason in ("malformed", "oversize", "bad_name", "wrong_topic")
        return
    assert u.meta is not None and u.meta.base_id in (None,) or is_name(u.meta.base_id)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=600), topic=st.sampled_from([UP, "segel/up/000101", topics.bridge_status("x")]))
def test_any_bytes_are_an_uplink_or_a_payload_error(raw: bytes, topic: str) -> None:
    try:
        if payloads.is_bridge_status(topic):
            payloads.bridge_status(topic, raw)
        else:
            to_uplink(topic, raw, 0.0)
    except PayloadError:
        pass


@settings(max_examples=500, deadline=None)
@given(text=st.text())
def test_no_string_field_can_start_a_second_line(text: str) -> None:
    line = schema.point("rejected", {"reason": "malformed"}, {"topic": text, "count": 1}, 1)
    assert "\n" not in line and "\r" not in line and line.startswith("rejected,reason=malformed ")


@settings(max_examples=500, deadline=None)
@given(text=st.text(min_size=1))
def test_a_tag_value_is_escaped_or_refused_never_a_second_line(text: str) -> None:
    try:
        line = schema.point("rx", {"device": "000101", "base": text}, {"rssi": -90.0}, 1)
    except schema.SchemaError as e:
        assert "control character" in str(e)
        assert any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
        return
    assert "\n" not in line and line.startswith("rx,base=")
    assert schema.point("rx", {"base": "b1"}, {"rssi": float("inf"), "snr": 1.0}, 1) == "rx,base=b1 snr=1.0 1"
