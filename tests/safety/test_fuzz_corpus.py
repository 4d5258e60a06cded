"""The fuzz targets' kept corpora, crashers and regressions, replayed in CI (issue 19).

`segel bench fuzz` runs a million coverage-guided inputs per target outside CI (figures in
docs/security.md); here every input it kept (tests/safety/fuzz/corpus/<target>), every crasher
it ever saved (tests/safety/fuzz/crashers/<target>), the inputs of the bugs fixed since
(tests/safety/fuzz_regressions/<target>: each crashed before its fix) and a few thousand seeded
random inputs go through the same targets: none may raise, every one ends in a counted outcome.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from segel.bench import fuzz
from segel.bench.fuzz_targets import TARGETS, seeds

HERE = Path(__file__).resolve().parent
KEPT = [HERE / "fuzz" / "corpus", HERE / "fuzz" / "crashers", HERE / "fuzz_regressions"]


def kept(target: str) -> list[bytes]:
    return [p.read_bytes() for d in KEPT for p in sorted((d / target).glob("*")) if p.is_file()]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kept_inputs_end_in_counted_outcomes(target: str) -> None:
    inputs = seeds(target) + kept(target)
    counts = fuzz.replay(target, inputs)
    assert sum(counts.values()) == len(inputs)
    assert all(isinstance(k, str) and k for k in counts)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeded_random_and_mutated_inputs_never_crash(target: str) -> None:
    rng = random.Random(f"segel-{target}")
    base = seeds(target)
    inputs = []
    for i in range(1500):
        if i % 2:
            inputs.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))))
            continue
        b = bytearray(rng.choice(base))
        for _ in range(rng.randrange(1, 6)):  # flip, insert, delete a few bytes of a valid input
            op = rng.randrange(3)
            at = rng.randrange(len(b) + 1)
            if op == 0 and at < len(b):
                b[at] ^= 1 << rng.randrange(8)
            elif op == 1:
                b[at:at] = bytes([rng.getrandbits(8)])
            elif at < len(b):
                del b[at]
        inputs.append(bytes(b))
    counts = fuzz.replay(target, inputs)
    assert sum(counts.values()) == len(inputs)
    assert any(fuzz.is_rejection(k) for k in counts)  # the mutations are refused, cleanly


def test_the_fixed_bugs_are_clean_rejections_now() -> None:
    udp = fuzz.replay("udp", kept_named("udp"))
    assert udp["bad_rxpk+push_data"] == 2 and udp["malformed"] == 2, udp
    # a forwarder's free-text TX_ACK error is counted under one name, not under its own text
    assert udp["tx_ack_unknown_token+tx_other_error"] == 1, udp
    places = fuzz.replay("places", kept_named("places"))
    assert all(k.startswith("rejected") for k in places), places
    # found by `segel bench fuzz`: a locale.timezone too long for a file name raised OSError; a
    # calendar timezone of -27 hours raised the datetime module's ValueError, not a CalendarError;
    # a fleet.toml whose section is a number (`wifi = 0`) raised TypeError; a calendar whose
    # `seal` is a time, not a table, raised AttributeError
    assert fuzz.replay("config", kept_named("config")) == {"gateway:rejected": 1, "calendar:rejected": 2,
                                                           "fleet:rejected": 1}


def kept_named(target: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((HERE / "fuzz_regressions" / target).glob("*"))]


def test_every_surface_the_issue_names_has_a_target() -> None:
    assert set(TARGETS) == {"frame", "serial", "udp", "bridge_json", "places", "config"}


def test_made_up_gateway_euis_cannot_grow_the_forwarder_server_without_bound(tmp_path: Path) -> None:
    """Found while fuzzing: every datagram with a new EUI created a gateway record for ever (and
    the bridge's status grew with them). Now a bridge serves at most MAX_GATEWAYS."""
    from segel.bridge.buffer import Buffer
    from segel.bridge.udp import MAX_GATEWAYS, PacketForwarderServer

    srv = PacketForwarderServer("127.0.0.1", 0, "b1", Buffer(tmp_path / "b.db"))
    try:
        srv.sock.close()

        class Sock:
            def sendto(self, data: bytes, addr: object) -> int:
                return len(data)

        srv.sock = Sock()  # type: ignore[assignment]
        for i in range(MAX_GATEWAYS + 44):
            srv.datagram(bytes((2, 0, 1, 2)) + i.to_bytes(8, "big"), ("127.0.0.1", 1700))
        assert len(srv.gateways) == MAX_GATEWAYS and srv.counters["too_many_gateways"] == 44
        assert len(srv.base_status()) == MAX_GATEWAYS
    finally:
        srv._stop.set()
