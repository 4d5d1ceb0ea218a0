"""The gRPC server of ``serve``: a ``grpc.aio`` server on the event loop the HTTP server runs on.

It listens on ``A2A_SERVER_HOST``:``A2A_GRPC_PORT`` (0 turns it off), in plaintext unless
``A2A_GRPC_TLS_CERT`` and ``A2A_GRPC_TLS_KEY`` name a certificate and key. A message over
``A2A_MAX_BODY_BYTES`` is refused by gRPC itself before it is decoded (RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import socket
from pathlib import Path

import grpc

from queueapp.config import Config
from queueapp.protocol import grpc_binding

STOP_GRACE_S = 5.0  # in-flight calls get this long to finish when serve stops; open streams are then cut


class GrpcStartError(Exception):
    """The gRPC server cannot listen: the text says where and why."""


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _credentials(config: Config) -> grpc.ServerCredentials | None:
    if not config.grpc_tls_cert:
        return None
    try:
        chain, key = Path(config.grpc_tls_cert).read_bytes(), Path(config.grpc_tls_key).read_bytes()
    except OSError as exc:
        raise GrpcStartError(f"cannot read the gRPC TLS certificate or key: {exc}") from None
    return grpc.ssl_server_credentials([(key, chain)])


async def start(config: Config, reserved: socket.socket | None = None) -> grpc.aio.Server | None:
    """Start listening, or return None when ``A2A_GRPC_PORT`` is 0. Raises :class:`GrpcStartError`.

    ``reserved`` is the port as ``serve`` bound it first (see ``queueapp.listeners``): gRPC
    cannot adopt a socket, so it is closed just before gRPC binds the same address.
    """
    if not config.grpc_port:
        return None
    options = [
        ("grpc.max_receive_message_length", config.max_body_bytes),
        ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
    ]
    server = grpc.aio.server(options=options)
    grpc_binding.add_to_server(server)
    address = listen_address(config.server_host, config.grpc_port)
    if reserved is not None:
        reserved.close()
    credentials = _credentials(config)
    try:
        bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError as exc:
        raise GrpcStartError(f"cannot listen for gRPC on {address} (A2A_GRPC_PORT): {exc}") from None
    if not bound:
        raise GrpcStartError(f"cannot listen for gRPC on {address} (A2A_GRPC_PORT): the port is taken or the address is not this machine's")
    await server.start()
    return server


async def stop(server: grpc.aio.Server | None, grace: float = STOP_GRACE_S) -> None:
    """Take no new calls; those in flight get ``grace`` seconds, then are cancelled. A later
    call with a shorter grace ends them sooner (0: at once)."""
    if server is not None:
        await server.stop(grace)
