"""`segel plan concentrator`: the SX130x section an 8-channel gateway needs to hear Segel trackers
(private sync word: lorawan_public false), on exactly the firmware's AS923-2 channels."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from segel.cli import main as cli
from segel.radio import concentrator

from segelfw import airtime


@pytest.mark.parametrize(("chip", "section"), [("sx1302", "SX130x_conf"), ("sx1301", "SX1301_conf")])
def test_the_concentrator_listens_on_the_trackers_channels_with_the_private_sync_word(chip: str, section: str) -> None:
    conf = concentrator.sx130x_conf("AS923-2", chip)[section]
    assert conf["lorawan_public"] is False  # sync word 0x12, not LoRaWAN's 0x34
    heard = sorted(conf[f"radio_{c['radio']}"]["freq"] + c["if"] for k, c in conf.items()
                   if k.startswith("chan_multiSF_") and c["enable"])
    assert heard == [f * 1000 for f in airtime.REGIONS["AS923-2"]["channels_khz"]]
    assert all(abs(c["if"]) <= 400_000 for k, c in conf.items() if k.startswith("chan_multiSF_") and c["enable"])
    assert (conf["radio_0"]["tx_freq_min"], conf["radio_0"]["tx_freq_max"]) == (920_000_000, 923_000_000)
    assert conf["chan_Lora_std"] == {"enable": False} and conf["chan_FSK"] == {"enable": False}


def test_cli_prints_json_and_refuses_a_removed_region() -> None:
    r = CliRunner().invoke(cli, ["plan", "concentrator"])
    assert r.exit_code == 0 and json.loads(r.output)["SX130x_conf"]["lorawan_public"] is False
    bad = CliRunner().invoke(cli, ["plan", "concentrator", "--region", "ID923"])
    assert bad.exit_code == 1 and "outside 920-923 MHz" in bad.output
