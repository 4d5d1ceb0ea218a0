"""The sockets ``serve`` binds first and hands to its servers."""

from __future__ import annotations

import socket

from queueapp.listeners import bind_tcp


def test_accepted_connections_send_small_writes_at_once():
    # Without TCP_NODELAY a response written as head then body waits ~40 ms for the
    # client's delayed ACK; uvicorn sets it only on sockets it binds itself.
    listener = bind_tcp("HTTP", "127.0.0.1", 0)
    try:
        with socket.create_connection(listener.getsockname()[:2], timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        listener.close()
