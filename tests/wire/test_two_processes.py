"""Two real daphne processes on one Redis and one PostgreSQL (issue 4, items 1 and 8):
members on different processes see each other's messages in order, many senders across
both get gapless unique seqs, a client that drops and reconnects with ``sync`` misses
nothing, logout on one process closes sockets on the other, and the worker's pass pushes
``room.closed`` to clients of both."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.wire.conftest import http, open_ws, session_headers

pytestmark = [pytest.mark.wire, pytest.mark.postgres]

SENDERS = 20
MESSAGES = 25


@pytest.fixture
def two(wire_backend, daphnes):
    assert wire_backend.postgres and wire_backend.redis_url, "needs DATABASE_URL (PostgreSQL) and REDIS_URL"
    return daphnes(), daphnes()


def consumers(demo: dict) -> list[dict]:
    return [u for u in demo["users"] if u["role"] == "consumer"]


async def test_a_conversation_across_processes_is_seen_in_the_same_order(wire_backend, two):
    a, b = two
    demo = wire_backend.demo(consumers=2)
    room = demo["room_id"]
    alice_user, bob_user = consumers(demo)
    alice = await open_ws(a, room, alice_user["session"])
    bob = await open_ws(b, room, bob_user["session"])
    seen = {"alice": [], "bob": []}
    for turn in range(10):
        speaker, listener = (alice, bob) if turn % 2 == 0 else (bob, alice)
        await speaker.send({"type": "chat.send", "body": f"tour {turn}", "ref": str(turn)})
        heard = await listener.recv_until("chat.message")
        assert heard["body"] == f"tour {turn}"
        own = await speaker.recv_until("chat.message")
        assert own["seq"] == heard["seq"]
    for name, sock in (("alice", alice), ("bob", bob)):
        await sock.send({"type": "sync", "after_seq": 0})
        while (frame := await sock.recv())["type"] != "synced":
            if frame["type"] == "chat.message":
                seen[name].append((frame["seq"], frame["body"]))
    assert seen["alice"] == seen["bob"] == [(i + 1, f"tour {i}") for i in range(10)]
    await alice.close()
    await bob.close()


async def test_many_senders_on_both_processes(wire_backend, two):
    a, b = two
    demo = wire_backend.demo(consumers=SENDERS + 2)
    room = demo["room_id"]
    people = consumers(demo)
    readers = [await open_ws(a, room, people[0]["session"]), await open_ws(b, room, people[1]["session"])]
    senders = [await open_ws((a, b)[i % 2], room, u["session"]) for i, u in enumerate(people[2:])]

    async def talk(index: int, sock) -> list[int]:
        for n in range(MESSAGES):
            await sock.send({"type": "chat.send", "body": f"{index}:{n}", "ref": f"{index}:{n}"})
        acks = {}
        while len(acks) < MESSAGES:
            frame = await sock.recv(timeout=30)
            if frame["type"] == "ack":
                acks[frame["ref"]] = frame["seq"]
            assert frame["type"] != "error", frame
        return [acks[f"{index}:{n}"] for n in range(MESSAGES)]

    async def listen(sock) -> list[dict]:
        got = []
        while len(got) < SENDERS * MESSAGES:
            frame = await sock.recv(timeout=30)
            if frame["type"] == "chat.message":
                got.append(frame)
        return got

    listening = [asyncio.create_task(listen(r)) for r in readers]
    per_sender = await asyncio.gather(*(talk(i, s) for i, s in enumerate(senders)))
    total = SENDERS * MESSAGES
    # Gapless and unique across 20 connections on two processes.
    assert sorted(seq for seqs in per_sender for seq in seqs) == list(range(1, total + 1))
    # Each sender's messages are logged in the order it sent them.
    assert all(seqs == sorted(seqs) for seqs in per_sender)
    heard = await asyncio.gather(*listening)
    for got in heard:
        # Every member, on either process, gets every message, in seq order.
        assert [f["seq"] for f in got] == list(range(1, total + 1))
        by_seq = {f["seq"]: f["body"] for f in got}
        for index, seqs in enumerate(per_sender):
            assert [by_seq[s] for s in seqs] == [f"{index}:{n}" for n in range(MESSAGES)]
    for sock in (*readers, *senders):
        await sock.close()


async def test_a_client_that_drops_and_syncs_misses_nothing(wire_backend, two):
    a, b = two
    demo = wire_backend.demo(consumers=1)
    room = demo["room_id"]
    mediator = next(u for u in demo["users"] if u["role"] == "mediator")
    roaming_user = consumers(demo)[0]
    sender = await open_ws(a, room, mediator["session"])
    roaming = await open_ws(b, room, roaming_user["session"])
    total = 150
    seen: dict[int, str] = {}

    async def talk():
        for n in range(total):
            await sender.send({"type": "chat.send", "body": f"m{n}"})
            await sender.recv_until("ack")
            await asyncio.sleep(0.005)

    talking = asyncio.create_task(talk())
    while len(seen) < 40:
        frame = await roaming.recv()
        seen[frame["seq"]] = frame["body"]
    # Drops mid-stream, and comes back on the other process while the room talks on.
    await roaming.close()
    await asyncio.sleep(0.2)
    roaming = await open_ws(a, room, roaming_user["session"])
    await roaming.send({"type": "sync", "after_seq": max(seen), "ref": "s"})
    while True:
        frame = await roaming.recv()
        if frame["type"] == "chat.message":
            seen[frame["seq"]] = frame["body"]
        elif frame["type"] == "synced":
            break
    await talking
    while len(seen) < total:
        frame = await roaming.recv()
        if frame["type"] == "chat.message":
            seen[frame["seq"]] = frame["body"]
    assert sorted(seen) == list(range(1, total + 1))
    assert [seen[s] for s in sorted(seen)] == [f"m{n}" for n in range(total)]
    await roaming.close()
    await sender.close()


async def test_logout_on_one_process_closes_sockets_on_the_other(wire_backend, two):
    a, b = two
    demo = wire_backend.demo(consumers=2)
    room = demo["room_id"]
    alice, bob = consumers(demo)
    on_a = await open_ws(a, room, alice["session"])
    on_b = await open_ws(b, room, alice["session"])
    other = await open_ws(b, room, bob["session"])
    start = time.monotonic()
    status = (await asyncio.to_thread(http, "POST", a.base + "/api/v1/auth/logout", body={}, headers=session_headers(alice["session"])))[0]
    assert status == 204
    assert await asyncio.gather(on_a.closed_code(2), on_b.closed_code(2)) == [4401, 4401]
    assert time.monotonic() - start < 1.0
    await other.send({"type": "ping", "ref": "p"})
    assert await other.recv() == {"type": "pong", "ref": "p"}
    await other.close()


async def test_the_worker_closes_and_pushes_to_both_processes(wire_backend, two):
    a, b = two
    demo = wire_backend.demo(consumers=2)
    room = demo["room_id"]
    alice, bob = consumers(demo)
    on_a = await open_ws(a, room, alice["session"])
    on_b = await open_ws(b, room, bob["session"])
    wire_backend.sql(
        "UPDATE rooms_mediation SET closes_at = now() - interval '1 second' WHERE id = ?", (int(demo["mediation_id"]),)
    )
    out = await asyncio.to_thread(wire_backend.manage, "run_deadlines", "--once")
    assert "mediations_close_due=1" in out
    for sock in (on_a, on_b):
        closed = await sock.recv_until("room.closed", timeout=5)
        assert (closed["seq"], closed["reason"]) == (2, "deadline")  # after mediation.phase, seq 1
        await sock.send({"type": "chat.send", "body": "trop tard", "ref": "late"})
        error = await sock.recv_until("error")
        assert (error["code"], error["ref"]) == ("room_closed", "late")
        await sock.close()
