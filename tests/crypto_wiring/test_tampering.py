"""Issue 5.6: stored rows altered behind the application's back.

Decided behaviour (rooms/log.py, rooms/views.py):

* one event whose ciphertext fails authentication (a flipped bit, a ciphertext moved to
  another room, seq or type) is returned in its place with its free text null and
  ``"unreadable": true``; the rest of the log reads normally, so a member's history and
  ``sync`` never get stuck on one damaged row;
* a room whose data key does not unwrap (its master key missing from the ring, or another
  key under the same id, or a damaged wrapped key) answers ``503 unavailable`` on
  ``/events`` and an ``unavailable`` error on the socket: an operator's error to fix,
  after which everything reads again, rather than a history shown as lost.

Never wrong plaintext, never a 500 or a stack trace.
"""

import os

import pytest
from asgiref.sync import sync_to_async

from rooms.models import Event, Room
from tests.conftest import connect

from .conftest import (
    NEW_KEY,
    OLD_KEY,
    as_bytes,
    events,
    events_by_seq,
    post,
    raw_event,
    raw_room,
    raw_update,
    set_ring,
)

BODIES = ["Premier message", "Deuxième message", "Troisième message"]


@pytest.fixture
def log(plenary, consumer):
    return [post(plenary, consumer, body) for body in BODIES]


def flip(blob: bytes, position: int) -> bytes:
    damaged = bytearray(blob)
    damaged[position] ^= 0x01
    return bytes(damaged)


def assert_unreadable(event: dict, seq: int) -> None:
    assert event["seq"] == seq and event["type"] == "chat.message"
    assert event["body"] is None and event["unreadable"] is True
    assert "shredded" not in event and "redacted" not in event


def assert_clean_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"} and response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert b"Traceback" not in response.content and b"Error(" not in response.content


# --- one damaged event ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("where", "position"),
    [("version byte", 0), ("nonce", 5), ("ciphertext", 20), ("tag", -1)],
)
def test_a_flipped_bit_makes_that_event_unreadable_and_no_other(plenary, consumer, log, where, position, caplog):
    row = raw_event(plenary.pk, 2)
    raw_update(Event, row["id"], ciphertext=flip(as_bytes(row["ciphertext"]), position))

    page = events_by_seq(plenary, consumer)

    assert_unreadable(page[2], 2)
    assert page[1]["body"] == BODIES[0] and page[3]["body"] == BODIES[2]
    assert page[2]["author"] == log[1]["author"] and page[2]["id"] == log[1]["id"]
    assert any("failed authentication" in record.getMessage() for record in caplog.records)


@pytest.mark.django_db
def test_a_truncated_ciphertext_is_unreadable(plenary, consumer, log):
    row = raw_event(plenary.pk, 1)
    raw_update(Event, row["id"], ciphertext=as_bytes(row["ciphertext"])[:20])
    assert_unreadable(events_by_seq(plenary, consumer)[1], 1)


@pytest.mark.django_db
def test_a_ciphertext_copied_to_another_seq_is_unreadable_there(plenary, consumer, log):
    source = raw_event(plenary.pk, 1)
    raw_update(Event, raw_event(plenary.pk, 3)["id"], ciphertext=as_bytes(source["ciphertext"]))
    page = events_by_seq(plenary, consumer)
    assert page[1]["body"] == BODIES[0]  # the original still reads
    assert_unreadable(page[3], 3)  # never "Premier message" at seq 3


@pytest.mark.django_db
def test_an_event_whose_type_was_changed_is_unreadable(plenary, consumer, log):
    """The event type is associated data too: a chat message can't pose as another event."""
    raw_update(Event, raw_event(plenary.pk, 2)["id"], type="offer.submitted")
    event = events_by_seq(plenary, consumer)[2]
    assert event["type"] == "offer.submitted" and event["body"] is None and event["unreadable"] is True


@pytest.mark.django_db
def test_a_ciphertext_copied_to_another_room_is_unreadable_even_under_the_same_key(
    mediation, plenary, consumer, mediator, log
):
    """The room id is bound as associated data: even a room given the very same data key
    (its wrapped key copied too) can't read a ciphertext moved into it."""
    from rooms import services

    other, _, _ = services.caucus_open(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    post(other, consumer, "Dans l’aparté")
    source = raw_room(plenary.pk)
    raw_update(Room, other.pk, wrapped_key=as_bytes(source["wrapped_key"]), master_key_id=source["master_key_id"])
    raw_update(Event, raw_event(other.pk, 1)["id"], ciphertext=as_bytes(raw_event(plenary.pk, 1)["ciphertext"]))

    assert_unreadable(events_by_seq(other, consumer)[1], 1)
    assert events_by_seq(plenary, consumer)[1]["body"] == BODIES[0]


@pytest.mark.django_db(transaction=True)
async def test_sync_over_the_socket_shows_the_damaged_event_and_goes_on(plenary, consumer, log):
    row = await sync_to_async(raw_event)(plenary.pk, 2)
    await sync_to_async(raw_update)(Event, row["id"], ciphertext=flip(as_bytes(row["ciphertext"]), 30))
    sock = await connect(plenary, consumer)
    await sock.send({"type": "sync", "after_seq": 0, "ref": "s"})
    frames = [await sock.recv() for _ in range(4)]
    assert [f["type"] for f in frames] == ["chat.message"] * 3 + ["synced"]
    assert frames[0]["body"] == BODIES[0] and frames[2]["body"] == BODIES[2]
    assert_unreadable(frames[1], 2)
    assert frames[3] == {"type": "synced", "ref": "s", "last_seq": 3}
    # The room is not broken: it goes on live.
    await sock.send({"type": "chat.send", "body": "Et maintenant ?", "ref": "c"})
    replies = {f["type"]: f for f in [await sock.recv(), await sock.recv()]}
    assert replies["chat.message"]["body"] == "Et maintenant ?" and replies["ack"]["seq"] == 4
    await sock.close()


# --- a room key that does not unwrap ----------------------------------------------------------


WRONG_RINGS = {
    "the room's key id is missing from the ring": (NEW_KEY,),
    "same key id, other bytes": (("mk-old", os.urandom(32)),),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", WRONG_RINGS)
def test_a_wrong_master_key_gives_503_unavailable_never_text(settings, plenary, consumer, log, case, caplog):
    set_ring(settings, *WRONG_RINGS[case])
    response = events(plenary, consumer)
    assert_clean_error(response, 503, "unavailable")
    assert not any(body.encode() in response.content for body in BODIES)
    assert any("does not unwrap" in record.getMessage() for record in caplog.records)

    set_ring(settings, OLD_KEY)  # the operator puts the right key back: nothing was lost
    assert [e["body"] for e in events_by_seq(plenary, consumer).values()] == BODIES


@pytest.mark.django_db
def test_a_damaged_wrapped_key_gives_503_unavailable(plenary, consumer, log):
    wrapped = as_bytes(raw_room(plenary.pk)["wrapped_key"])
    raw_update(Room, plenary.pk, wrapped_key=flip(wrapped, 7))
    assert_clean_error(events(plenary, consumer), 503, "unavailable")
    raw_update(Room, plenary.pk, wrapped_key=wrapped)
    assert events(plenary, consumer).status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", WRONG_RINGS)
async def test_a_wrong_master_key_gives_unavailable_on_the_socket_and_writes_nothing(
    settings, plenary, consumer, log, case
):
    set_ring(settings, *WRONG_RINGS[case])
    sock = await connect(plenary, consumer)
    assert sock.welcome["last_seq"] == 3
    await sock.send({"type": "sync", "after_seq": 0, "ref": "s"})
    error = await sock.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "unavailable", "s")
    await sock.send({"type": "chat.send", "body": "Perdu ?", "ref": "c"})
    error = await sock.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "unavailable", "c")
    assert await sock.nothing()
    assert (await sync_to_async(raw_room)(plenary.pk))["last_seq"] == 3  # nothing written

    set_ring(settings, OLD_KEY)
    await sock.send({"type": "sync", "after_seq": 2, "ref": "s2"})
    assert (await sock.recv())["body"] == BODIES[2]
    assert (await sock.recv())["type"] == "synced"
    await sock.close()
