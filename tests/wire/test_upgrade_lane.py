"""The upgrade lane (project/upgrades.py) on a real daphne: a handshake it takes and one it
leaves to daphne's own HTTP protocol (a repeated header, which daphne joins) both open a
room socket that talks, and the pages are still served."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from tests.wire.conftest import http

pytestmark = pytest.mark.wire


async def room_socket(server, room_id, session: str, extra_headers: list[tuple[str, str]]):
    ws = await connect(
        f"{server.ws_base}/ws/rooms/{room_id}/",
        origin=server.base,
        additional_headers=[("Cookie", f"sessionid={session}"), *extra_headers],
        open_timeout=20,
        ping_interval=None,
        compression=None,
    )
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return ws, welcome


@pytest.mark.parametrize("extra_headers", [
    [],  # the lane
    [("Pragma", "no-cache"), ("Pragma", "no-store")],  # daphne's path
])
async def test_a_room_socket_opens_and_talks_whichever_path_its_handshake_takes(wire_backend, daphnes, extra_headers):
    server = daphnes()
    demo = wire_backend.demo(consumers=1)
    consumer = next(u for u in demo["users"] if u["role"] == "consumer")
    ws, welcome = await room_socket(server, demo["room_id"], consumer["session"], extra_headers)
    assert (welcome["type"], welcome["me"]["role"]) == ("welcome", "consumer")
    await ws.send(json.dumps({"type": "chat.send", "body": "par le couloir", "ref": "c"}))
    frames = {f["type"]: f for f in [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]}
    assert frames["chat.message"]["body"] == "par le couloir"
    assert frames["ack"]["ref"] == "c"
    await ws.close()
    assert http("GET", server.base + "/healthz")[0] == 200
