"""The SeaweedFS fixture's port choice: never inside the range Linux hands to outgoing connections."""

from __future__ import annotations

from tests.fixtures import seaweed


def test_ports_and_grpc_twins_stay_below_the_ephemeral_range() -> None:
    low = seaweed._ephemeral_low()
    for _ in range(50):
        ports = seaweed._pick_ports(len(seaweed._PORT_FLAGS))
        assert ports == list(range(ports[0], ports[0] + len(ports)))
        assert all(10000 <= p and p + seaweed._GRPC_OFFSET < low for p in ports)
