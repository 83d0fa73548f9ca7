"""Group commit of chat (rooms.batcher, rooms.services.messages_post): messages that
arrive while the database thread is busy are written together, and each still gets its
own answer, its own seq and its own refusal, in its author's language."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from rooms import services
from rooms.actions import Conn, chat_send_many
from rooms.batcher import Batcher
from rooms.errors import ActionError
from rooms.models import Event, Room
from rooms.services import Post

pytestmark = pytest.mark.django_db(transaction=True)


def conn_of(member, room) -> Conn:
    return Conn(user_id=str(member.user_id), member_id=str(member.pk), room_id=str(room.pk))


def test_one_transaction_gives_each_post_its_answer_and_its_seq(mediation, plenary, mediator, consumer, consumers):
    muted, other = consumers(2)
    services.member_mute(member_id=mediator.pk, room_id=plenary.pk, target_id=str(muted.pk), until=None)
    caucus = services.room_create(mediation=mediation, kind="caucus", title="Aparté", caucus_member=consumer)
    results = services.messages_post(
        [
            Post(str(consumer.pk), str(plenary.pk), "un", "fr"),
            Post(str(muted.pk), str(plenary.pk), "chut", "en"),
            Post(str(consumer.pk), str(caucus.pk), "à part", "fr"),
            Post(str(other.pk), str(plenary.pk), "deux", "fr"),
            Post(str(other.pk), str(caucus.pk), "pas mon aparté", "fr"),
            Post(str(muted.pk), str(plenary.pk), "chut", "fr"),
        ]
    )
    # The mute was seq 1 of the plenary: the two accepted posts follow it, in order.
    assert [r["seq"] if isinstance(r, dict) else r.code for r in results] == [2, "muted", 1, 3, "forbidden", "muted"]
    assert results[1].message == "You are muted." and results[5].message == "La parole vous a été retirée."
    stored = {(e.room_id, e.seq): e for e in Event.objects.filter(type="chat.message")}
    assert sorted(stored) == sorted([(plenary.pk, 2), (plenary.pk, 3), (caucus.pk, 1)])
    assert results[0] == {
        "type": "chat.message", "seq": 2, "at": results[0]["at"], "id": str(stored[(plenary.pk, 2)].pk),
        "author": consumer.public(), "body": "un",
    }
    # One INSERT for both rooms: each answer names its own stored row.
    for result, room in ((results[0], plenary), (results[2], caucus), (results[3], plenary)):
        assert result["id"] == str(stored[(room.pk, result["seq"])].pk)
    assert [r.last_seq for r in Room.objects.filter(pk__in=[plenary.pk, caucus.pk]).order_by("kind")] == [1, 3]
    # What is stored reads back as what was sent (encrypted, bound to its own seq).
    page, _ = services.events_page(room=Room.objects.get(pk=plenary.pk), after_seq=1, limit=10)
    assert [(f["seq"], f["body"]) for f in page] == [(2, "un"), (3, "deux")]


async def test_frames_that_wait_for_the_thread_go_in_one_batch(plenary, consumer, consumers):
    members = [consumer, *await sync_to_async(consumers)(3)]
    sizes = []

    def handler(items):
        sizes.append(len(items))
        return chat_send_many(items)

    batcher = Batcher(handler)
    items = [(conn_of(m, plenary), {"type": "chat.send", "body": f"m{i}"}, f"r{i}", "fr") for i, m in enumerate(members)]
    items.append((conn_of(members[0], plenary), {"type": "chat.send", "body": 42}, "bad", "en"))
    answers = await asyncio.gather(*(batcher.submit(item) for item in items), return_exceptions=True)
    assert sizes == [5]
    assert [a[0] for a in answers[:4]] == [{"type": "ack", "ref": f"r{i}", "seq": i + 1} for i in range(4)]
    assert isinstance(answers[4], ActionError) and answers[4].code == "bad_request"
    assert answers[4].message.startswith("Field")  # said in English, its author's language
    # Later frames start a new batch once the thread is free.
    assert (await batcher.submit(items[0]))[0]["seq"] == 5
    assert sizes == [5, 1]


async def test_a_failed_batch_fails_each_of_its_frames_and_the_next_batch_goes_on(plenary, consumer):
    calls = []

    def handler(items):
        calls.append(len(items))
        if len(calls) == 1:
            raise OperationalError("the database went away")
        return chat_send_many(items)

    batcher = Batcher(handler)
    item = (conn_of(consumer, plenary), {"type": "chat.send", "body": "allô"}, "r", "fr")
    answers = await asyncio.gather(batcher.submit(item), batcher.submit(item), return_exceptions=True)
    assert [type(a) for a in answers] == [OperationalError, OperationalError]
    assert await sync_to_async(Event.objects.count)() == 0
    assert (await batcher.submit(item))[0]["seq"] == 1
