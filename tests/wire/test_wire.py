"""The room socket on a real daphne (both passes): the handshake's refusals are HTTP 403
to the upgrade, a demo ``--sessions`` cookie authenticates a socket, logout closes a
user's sockets with 4401 within a second, and a client that stops reading is closed with
4409 without holding the room back, then catches up with ``sync``."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.wire.conftest import http, open_ws, session_headers, small_receive_buffer_socket

pytestmark = pytest.mark.wire


def by_role(demo: dict, role: str) -> list[dict]:
    return [u for u in demo["users"] if u["role"] == role]


async def test_handshake_over_the_wire(wire_backend, daphnes):
    server = daphnes()
    demo = wire_backend.demo(consumers=2)
    room = demo["room_id"]
    consumer = by_role(demo, "consumer")[0]
    assert http("GET", server.base + "/healthz")[::2] == (200, {"status": "ok", "database": "ok", "channel_layer": "ok"})
    for session, origin in (
        (None, "same"),  # anonymous
        ("not-a-session", "same"),
        (consumer["session"], "http://evil.example"),
        (consumer["session"], None),  # no Origin header
    ):
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(server, room, session, origin=origin)
        assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(server, "999999", consumer["session"])
    assert refused.value.response.status_code == 403
    # The demo's cookie opens a socket and the room talks.
    sock = await open_ws(server, room, consumer["session"])
    assert sock.welcome["me"]["role"] == "consumer"
    await sock.send({"type": "chat.send", "body": "sur le fil", "ref": "w"})
    own = {f["type"]: f for f in (await sock.recv(), await sock.recv())}
    assert own["ack"] == {"type": "ack", "ref": "w", "seq": own["chat.message"]["seq"]}
    # A frame over 64 KiB is refused, and the socket stays usable.
    await sock.send(json.dumps({"type": "chat.send", "body": "x" * 70_000, "ref": "big"}))
    error = await sock.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "too_large", None)
    await sock.send({"type": "ping", "ref": "p"})
    assert await sock.recv() == {"type": "pong", "ref": "p"}
    await sock.close()


async def test_a_client_offering_compression_as_browsers_do_gets_a_plain_socket(wire_backend, daphnes):
    """Browsers offer permessage-deflate at every handshake; daphne declines it and the
    room talks uncompressed (the broadcast fast lane writes plain frames)."""
    server = daphnes()
    demo = wire_backend.demo(consumers=1)
    sock = await open_ws(server, demo["room_id"], by_role(demo, "consumer")[0]["session"], compression="deflate")
    assert sock.ws.response.headers.get("Sec-WebSocket-Extensions") is None
    await sock.send({"type": "chat.send", "body": "compressé ?", "ref": "z"})
    frames = {f["type"]: f for f in (await sock.recv(), await sock.recv())}
    assert frames["chat.message"]["body"] == "compressé ?"
    await sock.close()


async def test_logout_closes_the_users_sockets_with_4401_within_a_second(wire_backend, daphnes):
    server = daphnes()
    demo = wire_backend.demo(consumers=2)
    room = demo["room_id"]
    alice, bob = by_role(demo, "consumer")
    first = await open_ws(server, room, alice["session"])
    second = await open_ws(server, room, alice["session"])
    other = await open_ws(server, room, bob["session"])
    start = time.monotonic()
    status, _headers, _body = await asyncio.to_thread(
        http, "POST", server.base + "/api/v1/auth/logout", body={}, headers=session_headers(alice["session"])
    )
    assert status == 204
    codes = await asyncio.gather(first.closed_code(timeout=2), second.closed_code(timeout=2))
    elapsed = time.monotonic() - start
    assert codes == [4401, 4401]
    assert elapsed < 1.0, f"closed after {elapsed:.2f}s"
    # Only that user's sockets, and the session is gone.
    await other.send({"type": "ping", "ref": "still"})
    assert await other.recv() == {"type": "pong", "ref": "still"}
    with pytest.raises(InvalidStatus):
        await open_ws(server, room, alice["session"])
    await other.close()


async def test_a_client_that_stops_reading_is_closed_with_4409_and_catches_up(wire_backend, daphnes):
    server = daphnes(PALABRE_MAX_BACKLOG_BYTES=32 * 1024, PALABRE_LOG_LEVEL="INFO")
    demo = wire_backend.demo(consumers=2)
    room = demo["room_id"]
    mediator = by_role(demo, "mediator")[0]
    reader_user, stalled_user = by_role(demo, "consumer")
    # The stalled client: a tiny kernel buffer and a one-frame queue, and it stops reading.
    stalled = await open_ws(server, room, stalled_user["session"], sock=small_receive_buffer_socket(server), max_queue=1)
    reader = await open_ws(server, room, reader_user["session"])
    sender = await open_ws(server, room, mediator["session"])
    body = "é" * 4000  # an 8 kB frame
    seqs = []
    # The room talks on; the reader keeps up all along: the room never waits for the
    # stalled socket. Talk until the server has given up on it.
    while not any("fell behind" in line for line in server.log().splitlines()):
        assert len(seqs) < 2000, "the stalled socket was never closed"
        await sender.send({"type": "chat.send", "body": body, "ref": str(len(seqs))})
        ack = await sender.recv_until("ack")
        seqs.append(ack["seq"])
        assert (await reader.recv_until("chat.message"))["seq"] == ack["seq"]
    # Then the stalled client reads again: what reached it, in order, then the close 4409.
    seen = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            frame = json.loads(await asyncio.wait_for(stalled.ws.recv(), 10))
            if frame["type"] == "chat.message":
                seen.append(frame["seq"])
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
    assert seen == seqs[: len(seen)] and len(seen) < len(seqs)
    # It reconnects and syncs: nothing is missing.
    again = await open_ws(server, room, stalled_user["session"])
    await again.send({"type": "sync", "after_seq": seen[-1] if seen else seqs[0] - 1, "ref": "s"})
    caught = []
    while (frame := await again.recv())["type"] != "synced":
        caught.append(frame["seq"])
    assert seen + caught == seqs
    assert frame == {"type": "synced", "ref": "s", "last_seq": seqs[-1]}
    for sock in (again, reader, sender):
        await sock.close()
