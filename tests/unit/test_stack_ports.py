"""revpulse dev refuses a taken port before it starts anything."""

from __future__ import annotations

import socket

import pytest

from streams.devstack.stack import ensure_port_free, free_port
from streams.errors import StackError


def test_a_listening_port_is_refused_with_the_option_to_change_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} for the broker is in use.*--kafka-port"):
            ensure_port_free(port, "broker", "--kafka-port PORT")


def test_a_free_port_passes() -> None:
    ensure_port_free(free_port(), "broker", "--kafka-port PORT")
