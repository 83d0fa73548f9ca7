"""Real daphne processes for the wire tests, on a backend of the pass: SQLite and the
in-memory layer, or (PostgreSQL pass) a database of their own and Redis under a prefix of
their own. The processes and their helpers are those of ``tests/chaos/procs.py``."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.chaos.procs import Backend, Daphne, http, session_headers

__all__ = ["Backend", "Daphne", "http", "session_headers", "Ws", "open_ws"]


@pytest.fixture(scope="session")
def wire_backend(tmp_path_factory):
    backend = Backend(tmp_path_factory.mktemp("wire"))
    backend.migrate()
    yield backend
    backend.drop()


@pytest.fixture
def daphnes(wire_backend):
    """``start(**env)`` starts one more daphne on the backend; all are stopped at the end,
    and none may have logged a server exception."""
    started: list[Daphne] = []

    def start(**env) -> Daphne:
        server = Daphne(wire_backend, name=f"daphne-{len(started) + 1}", env_extra=env)
        started.append(server)
        return server

    yield start
    failures = {server.name: server.tracebacks() for server in started}
    for server in started:
        server.stop()
    assert failures == {server.name: [] for server in started}


class Ws:
    """A raw protocol client: frames as dicts, nothing hidden (no gap filling)."""

    def __init__(self, ws, welcome: dict):
        self.ws, self.welcome = ws, welcome

    async def send(self, frame: dict | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 10, *, counts: bool = False) -> dict:
        """The next frame; ``room.counts`` (presence, sent on its own schedule) only when
        asked for: tests of other frames see the stream without it."""
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if counts or frame.get("type") != "room.counts":
                return frame

    async def recv_until(self, frame_type: str, timeout: float = 10) -> dict:
        while True:
            frame = await self.recv(timeout, counts=frame_type == "room.counts")
            if frame["type"] == frame_type:
                return frame

    async def closed_code(self, timeout: float = 10) -> int | None:
        """Reads (and drops) frames until the server closes; the close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    async def close(self) -> None:
        await self.ws.close()


async def open_ws(server: Daphne, room_id, session: str | None, *, origin: str | None = "same", sock=None, **options) -> Ws:
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    # Unbounded by default: a test socket that leaves broadcasts unread must not stop
    # reading, or its close would wait for a close frame queued behind them.
    options.setdefault("max_queue", None)
    options.setdefault("compression", None)
    ws = await connect(
        f"{server.ws_base}/ws/rooms/{room_id}/",
        origin=server.base if origin == "same" else origin,
        additional_headers=headers,
        open_timeout=20,
        ping_interval=None,
        sock=sock,
        **options,
    )
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert welcome["type"] == "welcome", welcome
    return Ws(ws, welcome)


def small_receive_buffer_socket(server: Daphne, rcvbuf: int = 4096) -> socket.socket:
    """A connected TCP socket whose kernel receive buffer is tiny: a client that stops
    reading on it makes the server's unsent backlog grow at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock
