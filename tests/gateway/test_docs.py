"""The documentation pages of the gateway core agree with the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from segel import config
from segel.edge import topics
from segel.influx import schema

DOCS = Path(__file__).parents[2] / "docs"


def test_influx_schema_doc_lists_every_measurement_tag_field_and_type() -> None:
    text = (DOCS / "influx-schema.md").read_text()
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    documented = {}
    for sec in sections:
        name = sec.split("`")[1]
        rows = re.findall(r"^\| `(\w+)` \| (tag|field) \| (\w+) \|$", sec, flags=re.M)
        documented[name] = rows
    assert set(documented) == set(schema.MEASUREMENTS)
    for m in schema.MEASUREMENTS.values():
        want = [(t, "tag", "string") for t in m.tags] + [(f, "field", k) for f, k in m.fields.items()]
        assert documented[m.name] == want, m.name


def test_configuration_doc_lists_every_setting() -> None:
    text = (DOCS / "configuration.md").read_text()
    for sec in config.SECTIONS:
        for f in dataclasses.fields(getattr(config.Config(), sec)):
            assert f"`{sec}.{f.name}`" in text, f"{sec}.{f.name} missing from docs/configuration.md"
            assert f"SEGEL_{sec.upper()}_{f.name.upper()}" in text


def test_mqtt_doc_names_every_topic() -> None:
    text = (DOCS / "mqtt.md").read_text()
    for name in ("TRACKER_UP", "TRACKER_DOWN", "BRIDGE_UP", "BRIDGE_DOWN", "BRIDGE_STATUS", "ALERT", "GATEWAY_STATUS"):
        assert getattr(topics, name).replace("{", "<").replace("}", ">") in text, name
