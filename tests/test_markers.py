"""An unmarked test cannot reach the network: tests/conftest.py refuses, and fails the test."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.conftest import UnmarkedNetworkUse


def test_an_unmarked_test_may_not_bind_or_connect_a_socket(in_memory_unless_marked_network: list[str]) -> None:
    with socket.socket() as sock:
        with pytest.raises(UnmarkedNetworkUse, match="not marked network"):
            sock.bind(("127.0.0.1", 0))
        with pytest.raises(UnmarkedNetworkUse, match="not marked network"):
            sock.connect(("127.0.0.1", 9))
    assert in_memory_unless_marked_network == ["socket.bind", "socket.connect"]
    in_memory_unless_marked_network.clear()  # refused as it should be: this test passes


def test_an_unmarked_test_may_not_start_a_subprocess(in_memory_unless_marked_network: list[str]) -> None:
    with pytest.raises(UnmarkedNetworkUse, match="not marked network"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert in_memory_unless_marked_network == ["starting a subprocess"]
    in_memory_unless_marked_network.clear()


@pytest.mark.network
def test_a_network_test_may(in_memory_unless_marked_network: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
    assert subprocess.run([sys.executable, "-c", "pass"], check=True).returncode == 0
    assert in_memory_unless_marked_network == []
