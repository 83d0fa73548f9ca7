"""The role × action matrix (issue 4, item 10): every room frame type, for a consumer, the
mediator, the company, a non-member and a pending member, each cell asserted exactly.

Non-members and pending members never get a socket (4403 at the handshake); the same
rights are also asserted for a member who loses their membership while connected, since
every action re-checks who acts."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from rooms.models import Event, Membership, MemberStatus, Role, Room
from tests.conftest import connect, refused

pytestmark = pytest.mark.django_db(transaction=True)

FRAME_TYPES = [
    "chat.send",
    "message.redact",
    "member.mute",
    "member.unmute",
    "room.moderate",
    "caucus.open",
    "sync",
    "ping",
]

# What the actor gets back: "ack" (logged, acked), "caucus.opened", "synced", "pong", or
# an error code.
MATRIX = {
    "consumer": {
        "chat.send": "ack",
        "message.redact": "forbidden",
        "member.mute": "forbidden",
        "member.unmute": "forbidden",
        "room.moderate": "forbidden",
        "caucus.open": "forbidden",
        "sync": "synced",
        "ping": "pong",
    },
    "mediator": {
        "chat.send": "ack",
        "message.redact": "ack",
        "member.mute": "ack",
        "member.unmute": "ack",
        "room.moderate": "ack",
        "caucus.open": "caucus.opened",
        "sync": "synced",
        "ping": "pong",
    },
    "company": {
        "chat.send": "ack",
        "message.redact": "forbidden",
        "member.mute": "forbidden",
        "member.unmute": "forbidden",
        "room.moderate": "forbidden",
        "caucus.open": "forbidden",
        "sync": "synced",
        "ping": "pong",
    },
    # Lost membership while connected (removed, or put back to pending).
    "non-member": {t: "forbidden" for t in FRAME_TYPES} | {"ping": "pong"},
    "pending": {t: "forbidden" for t in FRAME_TYPES} | {"ping": "pong"},
}

# The event each accepted logged action leaves at seq 2 (seq 1 is the target's message).
LOGGED = {
    "chat.send": "chat.message",
    "message.redact": "message.redacted",
    "member.mute": "member.muted",
    "member.unmute": "member.unmuted",
    "room.moderate": "room.moderated",
}


def frame_for(frame_type: str, target: Membership) -> dict:
    fields = {
        "chat.send": {"body": "bonjour"},
        "message.redact": {"seq": 1},
        "member.mute": {"member_id": str(target.pk)},
        "member.unmute": {"member_id": str(target.pk)},
        "room.moderate": {"moderated": True},
        "caucus.open": {"member_id": str(target.pk)},
        "sync": {"after_seq": 0},
        "ping": {},
    }[frame_type]
    return {"type": frame_type, "ref": "cell", **fields}


def snapshot(room) -> tuple:
    room = Room.objects.get(pk=room.pk)
    return (
        room.last_seq,
        room.moderated,
        tuple(Membership.objects.filter(mediation_id=room.mediation_id).order_by("pk").values_list("pk", "status", "muted")),
        tuple(Event.objects.filter(room=room).values_list("seq", "redacted_at")),
        Room.objects.filter(mediation_id=room.mediation_id).count(),
    )


@pytest.fixture
def cast(mediation, plenary, make_member):
    people = {
        "consumer": make_member(mediation, Role.CONSUMER),
        "mediator": make_member(mediation, Role.MEDIATOR),
        "company": make_member(mediation, Role.COMPANY),
        "non-member": make_member(mediation, Role.CONSUMER),
        "pending": make_member(mediation, Role.CONSUMER),
    }
    target = make_member(mediation, Role.CONSUMER)
    services.message_post(member_id=target.pk, room_id=plenary.pk, body="cible")
    Membership.objects.filter(pk=target.pk).update(muted=True)  # for unmute
    return people, target


async def lose_membership(role: str, member: Membership) -> None:
    if role == "non-member":
        await sync_to_async(Membership.objects.filter(pk=member.pk).delete)()
    elif role == "pending":
        await sync_to_async(Membership.objects.filter(pk=member.pk).update)(status=MemberStatus.PENDING)


@pytest.mark.parametrize("frame_type", FRAME_TYPES)
@pytest.mark.parametrize("role", list(MATRIX))
async def test_cell(plenary, cast, role, frame_type):
    people, target = cast
    actor = people[role]
    expected = MATRIX[role][frame_type]
    sock = await connect(plenary, actor)
    watcher = await connect(plenary, target)
    await lose_membership(role, actor)
    before = await sync_to_async(snapshot)(plenary)

    await sock.send(frame_for(frame_type, target))
    reply = await sock.recv()
    if expected in ("forbidden",):
        assert reply["type"] == "error", reply
        assert (reply["code"], reply["ref"]) == (expected, "cell")
        assert await sync_to_async(snapshot)(plenary) == before
        assert await watcher.nothing(0.1)
    elif expected == "ack":
        replies = [reply, await sock.recv()]
        by_type = {r["type"]: r for r in replies}
        assert by_type["ack"] == {"type": "ack", "ref": "cell", "seq": 2}
        assert by_type[LOGGED[frame_type]]["seq"] == 2
        assert (await watcher.recv())["type"] == LOGGED[frame_type]
    elif expected == "caucus.opened":
        assert reply["type"] == "caucus.opened" and reply["ref"] == "cell"
        assert reply["with"]["member_id"] == str(target.pk)
        told = await watcher.recv()
        assert told["type"] == "caucus.opened" and "ref" not in told
    elif expected == "synced":
        assert reply["type"] == "chat.message" and reply["seq"] == 1
        assert await sock.recv() == {"type": "synced", "ref": "cell", "last_seq": 1}
    elif expected == "pong":
        assert reply == {"type": "pong", "ref": "cell"}
    else:  # pragma: no cover - the table above has no other value
        raise AssertionError(expected)
    assert await sock.nothing(0.05)
    await sock.close()
    await watcher.close()


@pytest.mark.parametrize("role", ["non-member", "pending"])
async def test_outsiders_never_get_a_socket(plenary, cast, outsider, role):
    people, _target = cast
    await lose_membership(role, people[role])
    assert await refused(plenary, people[role].user) == 4403
    assert await refused(plenary, outsider) == 4403


def test_matrix_covers_every_client_frame_of_rooms():
    from rooms.actions import ACTIONS

    room_types = {t for t in ACTIONS if not t.startswith(("offer.", "ballot.", "vote."))}
    assert room_types | {"sync", "ping"} == set(FRAME_TYPES)
    assert all(set(row) == set(FRAME_TYPES) for row in MATRIX.values())
    json.dumps(MATRIX)
