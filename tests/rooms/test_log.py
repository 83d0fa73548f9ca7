"""The room log (issue 4, item 1): one gapless, unique ``seq`` per room under concurrent
writers on separate database connections; each room has its own sequence."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from rooms import services
from rooms.log import event_frame, room_data_key
from rooms.models import Event, Room

SENDERS = 20
MESSAGES = 25


def send_all(member, room, barrier: threading.Barrier, results: list) -> None:
    try:
        barrier.wait(timeout=30)
        for i in range(MESSAGES):
            frame = services.message_post(member_id=member.pk, room_id=room.pk, body=f"{member.pk}:{i}")
            results.append(frame["seq"])
    finally:
        connection.close()


def assert_gapless_under_concurrent_senders(room, senders) -> None:
    barrier = threading.Barrier(len(senders))
    results: list[int] = []
    with ThreadPoolExecutor(len(senders)) as pool:
        futures = [pool.submit(send_all, member, room, barrier, results) for member in senders]
        for future in futures:
            future.result()
    total = len(senders) * MESSAGES
    assert sorted(results) == list(range(1, total + 1))
    stored = list(Event.objects.filter(room=room).order_by("seq").values_list("seq", flat=True))
    assert stored == list(range(1, total + 1))
    room = Room.objects.get(pk=room.pk)
    assert room.last_seq == total
    # Each sender's own messages are in the order it sent them.
    key = room_data_key(room)
    by_sender: dict[str, list[int]] = {}
    for event in Event.objects.filter(room=room).order_by("seq"):
        sender, index = event_frame(event, key)["body"].split(":")
        by_sender.setdefault(sender, []).append(int(index))
    assert len(by_sender) == len(senders)
    assert all(indexes == list(range(MESSAGES)) for indexes in by_sender.values())


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_get_gapless_unique_seqs(plenary, consumers):
    assert_gapless_under_concurrent_senders(plenary, consumers(SENDERS))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_on_postgresql(plenary, consumers):
    """20 senders x 25 messages, each on its own PostgreSQL connection: seqs 1..500."""
    assert connection.vendor == "postgresql"
    assert_gapless_under_concurrent_senders(plenary, consumers(SENDERS))


def rooms_with_a_member(make_mediation, make_member, count: int) -> tuple[list, list]:
    """``count`` mediations, each with its plenary room and one member."""
    rooms, members = [], []
    for n in range(count):
        mediation = make_mediation(title=f"M{n}")
        rooms.append(services.plenary_room(mediation))
        members.append(make_member(mediation))
    return rooms, members


@pytest.mark.django_db(transaction=True)
def test_rooms_have_their_own_sequences(make_mediation, make_member):
    rooms, members = rooms_with_a_member(make_mediation, make_member, 3)
    barrier = threading.Barrier(3)
    results: list[list[int]] = [[], [], []]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(send_all, members[n], rooms[n], barrier, results[n]) for n in range(3)]
        for future in futures:
            future.result()
    assert all(seqs == list(range(1, MESSAGES + 1)) for seqs in results)


@pytest.mark.django_db(transaction=True)
def test_batches_over_the_same_rooms_in_opposite_orders(make_mediation, make_member):
    """Chat batches span many rooms and allocate their seqs in one statement: four writers
    (on PostgreSQL, four processes' connections) posting to the same six rooms, listed in
    opposite orders, never deadlock, and every room's log stays gapless and in order."""
    rooms, members = rooms_with_a_member(make_mediation, make_member, 6)
    barrier = threading.Barrier(4)

    def post_batches(writer: int) -> list:
        order = list(range(6)) if writer % 2 else list(reversed(range(6)))
        try:
            barrier.wait(timeout=30)
            return [
                services.messages_post(
                    [services.Post(members[n].pk, rooms[n].pk, f"{writer}:{i}") for n in order]
                )
                for i in range(MESSAGES)
            ]
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        batches = [frame for future in [pool.submit(post_batches, w) for w in range(4)] for frame in future.result()]
    assert not [f for batch in batches for f in batch if not isinstance(f, dict)]
    key_of = {room.pk: room_data_key(Room.objects.get(pk=room.pk)) for room in rooms}
    for room in rooms:
        events = list(Event.objects.filter(room=room).order_by("seq"))
        assert [e.seq for e in events] == list(range(1, 4 * MESSAGES + 1))
        assert Room.objects.get(pk=room.pk).last_seq == 4 * MESSAGES
        by_writer: dict[str, list[int]] = {}
        for event in events:
            writer, index = event_frame(event, key_of[room.pk])["body"].split(":")
            by_writer.setdefault(writer, []).append(int(index))
        assert all(indexes == list(range(MESSAGES)) for indexes in by_writer.values())
