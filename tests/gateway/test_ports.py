"""segel.ports: free ports outside the range client connections take theirs from."""

from __future__ import annotations

import socket

from segel import ports


def test_ports_are_free_distinct_and_outside_the_client_range() -> None:
    low, high = ports.ephemeral_range()
    got = ports.free_ports(300)
    assert len(set(got)) == len(got)
    for p in got:
        assert ports.LOWEST <= p <= 65535 and not low <= p <= high
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))  # nothing holds it


def test_a_port_in_use_is_never_handed_out(monkeypatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        monkeypatch.setattr(ports._random, "randint", lambda a, b, seq=iter([busy, busy, 20_001]): next(seq))
        monkeypatch.setattr(ports, "_given", set())
        assert ports.free_port() == 20_001


def test_address_in_use_knows_the_servers_wordings() -> None:
    assert ports.address_in_use("[FTL] Can't start monitoring: ... bind: address already in use")  # nats-server
    assert ports.address_in_use('LOG:  could not bind IPv4 address "127.0.0.1": Address already in use')  # PostgreSQL
    assert ports.address_in_use("Error: Address already in use")  # Mosquitto
    assert not ports.address_in_use("FATAL: password authentication failed")
