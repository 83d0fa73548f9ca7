"""One user opening hundreds of sockets, and hundreds of half-open or stalled handshakes,
against a real daphne: the per-user cap (PALABRE_MAX_SOCKETS_PER_USER, checked in
``RoomConsumer.connect``) refuses the excess, and everyone else is still served."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.chaos.procs import Backend, Daphne

CAP = 20


async def open_socket(server, room_id, session):
    """A socket that got its welcome, or the HTTP status of its refusal."""
    try:
        ws = await connect(
            f"{server.ws_base}/ws/rooms/{room_id}/",
            origin=server.base,
            additional_headers={"Cookie": f"sessionid={session}"},
            open_timeout=20,
        )
    except InvalidStatus as refused:
        return refused.response.status_code
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert welcome["type"] == "welcome"
    return ws


async def ping(ws, ref="p") -> None:
    await ws.send(json.dumps({"type": "ping", "ref": ref}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["type"] == "pong":
            assert frame["ref"] == ref
            return


@pytest.mark.chaos
@pytest.mark.wire
def test_a_user_with_hundreds_of_sockets_is_capped_and_half_open_handshakes_starve_no_one(tmp_path):
    backend = Backend(tmp_path)
    backend.migrate()
    demo = backend.demo(consumers=3)
    hog, other = [u for u in demo["users"] if u["role"] == "consumer"][:2]
    room = demo["room_id"]
    server = Daphne(backend, env_extra={"PALABRE_MAX_SOCKETS_PER_USER": CAP})
    stalled: list[socket.socket] = []
    try:
        async def scenario():
            # 300 sockets from one user: the first CAP are served, the rest refused (403).
            results = []
            for _batch in range(6):
                results += await asyncio.gather(*(open_socket(server, room, hog["session"]) for _ in range(50)))
            opened = [r for r in results if not isinstance(r, int)]
            refused = [r for r in results if isinstance(r, int)]
            assert len(opened) == CAP, (len(opened), set(refused))
            assert set(refused) == {403} and len(refused) == 300 - CAP

            # Half-open and stalled handshakes: TCP connections that never finish their
            # upgrade request, or send nothing at all.
            for i in range(400):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                if i % 2:
                    s.sendall(f"GET /ws/rooms/{room}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n".encode())
                stalled.append(s)

            # Meanwhile another member connects at once and chats; the hog's sockets still answer.
            started = time.monotonic()
            ws = await open_socket(server, room, other["session"])
            handshake_s = time.monotonic() - started
            assert not isinstance(ws, int), ws
            await ws.send(json.dumps({"type": "chat.send", "body": "toujours là", "ref": "c"}))
            kinds = set()
            while "ack" not in kinds or "chat.message" not in kinds:
                kinds.add(json.loads(await asyncio.wait_for(ws.recv(), 10))["type"])
            await asyncio.gather(*(ping(s) for s in opened))

            # Closing sockets frees the cap.
            for s in opened[:5]:
                await s.close()
            await asyncio.sleep(0.5)
            again = await asyncio.gather(*(open_socket(server, room, hog["session"]) for _ in range(6)))
            assert sum(not isinstance(r, int) for r in again) == 5, again
            for s in [*opened[5:], *[r for r in again if not isinstance(r, int)], ws]:
                await s.close()
            return handshake_s

        handshake_s = asyncio.run(scenario())
        print(f"\nhandshake of another member with 400 stalled connections open: {handshake_s * 1000:.0f} ms")
        assert handshake_s < 5
        assert server.alive()
        assert server.tracebacks() == []
    finally:
        for s in stalled:
            s.close()
        server.stop()
        backend.drop()
