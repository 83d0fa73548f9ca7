"""Bad input on the room socket (issue 4, item 7): an ``error`` frame with the ``ref``,
the connection stays open and usable, no other member sees anything, nothing stored
changes."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from rooms.models import Event, Membership, Room
from tests.conftest import connect

pytestmark = pytest.mark.django_db(transaction=True)

BIG = 64 * 1024


def stored(room) -> tuple:
    room = Room.objects.get(pk=room.pk)
    members = tuple(Membership.objects.filter(mediation_id=room.mediation_id).order_by("pk").values_list("muted", "muted_until"))
    events = tuple(Event.objects.filter(room=room).order_by("seq").values_list("seq", "type", "redacted_at"))
    return room.last_seq, room.moderated, members, events, Room.objects.count()


def frame_of_exactly(n_bytes: int) -> str:
    head = '{"type":"ping","ref":"big","pad":"'
    tail = '"}'
    return head + "x" * (n_bytes - len(head) - len(tail)) + tail


CASES = [
    # (what the client sends, expected code, expected ref)
    ("{not json", "bad_request", None),
    ("[1, 2, 3]", "bad_request", None),
    ('"chat.send"', "bad_request", None),
    ("null", "bad_request", None),
    ("42", "bad_request", None),
    ("[" * 5000 + "]" * 5000, "bad_request", None),
    ({"ref": "r"}, "bad_request", "r"),
    ({"type": "nope", "ref": "r"}, "bad_request", "r"),
    ({"type": 7, "ref": "r"}, "bad_request", "r"),
    ({"type": None, "ref": "r"}, "bad_request", "r"),
    ({"type": "chat.message", "body": "x", "ref": "r"}, "bad_request", "r"),  # server → client type
    ({"type": "welcome", "ref": "r"}, "bad_request", "r"),
    ({"type": "ping", "ref": 5}, "bad_request", None),
    ({"type": "ping", "ref": {"a": 1}}, "bad_request", None),
    ({"type": "chat.send", "ref": "r"}, "bad_request", "r"),
    ({"type": "chat.send", "body": None, "ref": "r"}, "bad_request", "r"),
    ({"type": "chat.send", "body": 5, "ref": "r"}, "bad_request", "r"),
    ({"type": "chat.send", "body": ["x"], "ref": "r"}, "bad_request", "r"),
    ({"type": "chat.send", "body": "", "ref": "r"}, "bad_request", "r"),
    ({"type": "chat.send", "body": "   \n ", "ref": "r"}, "bad_request", "r"),
    ({"type": "chat.send", "body": "x" * 4001, "ref": "r"}, "too_large", "r"),
    ({"type": "chat.send", "body": "é" * 4001, "ref": "r"}, "too_large", "r"),
    ({"type": "chat.send", "body": "x" * (BIG + 10), "ref": "r"}, "too_large", None),
    (frame_of_exactly(BIG + 1), "too_large", None),
    (json.dumps({"type": "chat.send", "body": "€" * 22_000, "ref": "r"}, ensure_ascii=False), "too_large", None),
    ({"type": "sync", "ref": "r"}, "bad_request", "r"),
    ({"type": "sync", "after_seq": "0", "ref": "r"}, "bad_request", "r"),
    ({"type": "message.redact", "ref": "r"}, "bad_request", "r"),
    ({"type": "message.redact", "seq": "1", "ref": "r"}, "bad_request", "r"),
    ({"type": "message.redact", "seq": 0, "ref": "r"}, "bad_request", "r"),
    ({"type": "message.redact", "seq": 10**30, "ref": "r"}, "bad_request", "r"),
    ({"type": "message.redact", "seq": 1.0, "ref": "r"}, "bad_request", "r"),
    ({"type": "message.redact", "seq": True, "ref": "r"}, "bad_request", "r"),
    ({"type": "member.mute", "ref": "r"}, "bad_request", "r"),
    ({"type": "member.mute", "member_id": [], "ref": "r"}, "bad_request", "r"),
    ({"type": "member.mute", "member_id": "abc", "ref": "r"}, "bad_request", "r"),
    ({"type": "member.mute", "member_id": "-3", "ref": "r"}, "bad_request", "r"),
    ({"type": "member.mute", "member_id": "1", "until": "tomorrow", "ref": "r"}, "bad_request", "r"),
    ({"type": "member.mute", "member_id": "1", "until": "2030-01-01T10:00:00", "ref": "r"}, "bad_request", "r"),
    ({"type": "member.mute", "member_id": "1", "until": 1893456000, "ref": "r"}, "bad_request", "r"),
    ({"type": "member.unmute", "member_id": None, "ref": "r"}, "bad_request", "r"),
    ({"type": "room.moderate", "ref": "r"}, "bad_request", "r"),
    ({"type": "room.moderate", "moderated": "yes", "ref": "r"}, "bad_request", "r"),
    ({"type": "room.moderate", "moderated": 1, "ref": "r"}, "bad_request", "r"),
    ({"type": "caucus.open", "ref": "r"}, "bad_request", "r"),
    ({"type": "caucus.open", "member_id": 1.5, "ref": "r"}, "bad_request", "r"),
]


@pytest.mark.parametrize(("sent", "code", "ref"), CASES, ids=range(len(CASES)))
async def test_bad_frame_gets_an_error_and_changes_nothing(plenary, mediator, consumer, sent, code, ref):
    # The mediator sends them: no right is missing, only the frame is wrong.
    await sync_to_async(services.message_post)(member_id=consumer.pk, room_id=plenary.pk, body="avant")
    before = await sync_to_async(stored)(plenary)
    bad = await connect(plenary, mediator)
    other = await connect(plenary, consumer)
    await bad.send(sent if isinstance(sent, str) else json.dumps(sent))
    error = await bad.recv()
    assert error["type"] == "error"
    assert (error["code"], error["ref"]) == (code, ref)
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) == {"type", "ref", "code", "message"}
    assert await bad.nothing(0.1)
    assert await other.nothing(0.1)
    assert await sync_to_async(stored)(plenary) == before
    # Still open and usable, for the sender and for everyone else.
    await bad.send({"type": "ping", "ref": "after"})
    assert await bad.recv() == {"type": "pong", "ref": "after"}
    await other.send({"type": "chat.send", "body": "toujours là", "ref": "o"})
    assert (await bad.recv_until("chat.message"))["body"] == "toujours là"
    await bad.close()
    await other.close()


async def test_binary_frame_is_bad_request(plenary, consumer):
    sock = await connect(plenary, consumer)
    await sock.comm.send_to(bytes_data=b'{"type": "ping"}')
    error = await sock.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "bad_request", None)
    await sock.send({"type": "ping"})
    assert (await sock.recv())["type"] == "pong"
    await sock.close()


async def test_boundaries_are_accepted(plenary, consumer):
    sock = await connect(plenary, consumer)
    await sock.send(frame_of_exactly(BIG))
    assert await sock.recv() == {"type": "pong", "ref": "big"}
    for body in ("x", "x" * 4000, "é" * 4000, "€" * 4000):
        await sock.send({"type": "chat.send", "body": body, "ref": "ok"})
        message = await sock.recv_until("chat.message")
        assert message["body"] == body
    await sock.close()


@pytest.mark.parametrize("role", ["consumer", "mediator"])
async def test_a_flood_is_rate_limited_then_recovers(plenary, consumer, mediator, settings, role):
    settings.PALABRE_RATE_BURST = 5
    settings.PALABRE_RATE_PER_S = 0.5  # slow enough that no token comes back during the flood
    member = consumer if role == "consumer" else mediator
    sock = await connect(plenary, member)
    other = await connect(plenary, consumer if role == "mediator" else mediator)
    for i in range(8):
        await sock.send({"type": "chat.send", "body": f"m{i}", "ref": f"f{i}"})
    acks, errors = [], []
    while len(acks) + len(errors) < 8:
        frame = await sock.recv()
        if frame["type"] == "ack":
            acks.append(frame)
        elif frame["type"] == "error":
            errors.append(frame)
    assert [a["ref"] for a in acks] == [f"f{i}" for i in range(5)]
    assert [e["ref"] for e in errors] == ["f5", "f6", "f7"]
    for error in errors:
        assert error["code"] == "rate_limited"
        assert isinstance(error["retry_after_ms"], int) and 0 < error["retry_after_ms"] <= 2001
        assert set(error) == {"type", "ref", "code", "message", "retry_after_ms"}
    # Only the accepted messages were stored and broadcast.
    assert await sync_to_async(lambda: Room.objects.get(pk=plenary.pk).last_seq)() == 5
    got = [await other.recv() for _ in range(5)]
    assert [g["body"] for g in got] == [f"m{i}" for i in range(5)]
    assert await other.nothing(0.1)
    await asyncio.sleep(errors[-1]["retry_after_ms"] / 1000 + 0.05)
    await sock.send({"type": "ping", "ref": "again"})
    assert await sock.recv_until("pong") == {"type": "pong", "ref": "again"}
    await sock.close()
    await other.close()


async def test_rate_limit_is_per_connection(plenary, consumer, mediator, settings):
    settings.PALABRE_RATE_BURST = 2
    settings.PALABRE_RATE_PER_S = 0.5
    flooder = await connect(plenary, consumer)
    calm = await connect(plenary, mediator)
    for _ in range(4):
        await flooder.send({"type": "ping"})
    replies = [await flooder.recv() for _ in range(4)]
    assert [r["type"] for r in replies] == ["pong", "pong", "error", "error"]
    await calm.send({"type": "ping", "ref": "c"})
    assert await calm.recv() == {"type": "pong", "ref": "c"}
    await flooder.close()
    await calm.close()
