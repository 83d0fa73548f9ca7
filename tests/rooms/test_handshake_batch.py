"""Handshakes read together (rooms.batcher, rooms.services.room_entries): the sockets of
a reconnect storm share their database hop and their queries, and each still gets the
answer it would have got alone: its own welcome, or 4403."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends import db as django_sessions
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from project import auth, sessions
from rooms import services
from rooms.models import Role
from tests.conftest import communicator, connect, refused, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def entered(found) -> tuple[int, int] | None:
    return None if found is None else (found[0].pk, found[1].pk)


@pytest.fixture
def handshakes(mediation, plenary, mediator, consumer, pending, outsider, make_mediation, make_member):
    """(session key, room id) of sockets that may enter and of sockets that may not, and
    the (room, member) each may enter, or None."""
    caucus = services.room_create(mediation=mediation, kind="caucus", title="Aparté", caucus_member=consumer)
    other = make_mediation(title="Autre")
    stranger = make_member(other, Role.CONSUMER)
    inactive = make_member(mediation, Role.CONSUMER)
    expired = make_member(mediation, Role.CONSUMER)
    keys = {m: session_cookie(m.user) for m in (mediator, consumer, pending, stranger, inactive, expired)}
    keys["outsider"] = session_cookie(outsider)
    get_user_model().objects.filter(pk=inactive.user_id).update(is_active=False)
    garbled = sessions.SessionStore()
    garbled.update({"_auth_user_id": "not an id", "_auth_user_backend": "project.auth.ModelBackend"})
    garbled.create()
    Session.objects.filter(pk=keys[expired]).update(expire_date=timezone.now() - timedelta(seconds=1))
    room = str(plenary.pk)
    may_enter = [
        ((keys[consumer], room), (plenary.pk, consumer.pk)),
        ((keys[mediator], room), (plenary.pk, mediator.pk)),
        ((keys[consumer], room), (plenary.pk, consumer.pk)),  # a second socket of one member
        ((keys[mediator], str(caucus.pk)), (caucus.pk, mediator.pk)),
        ((keys[consumer], str(caucus.pk)), (caucus.pk, consumer.pk)),
    ]
    may_not = [
        (keys[pending], room),
        (keys[stranger], room),
        (keys["outsider"], room),
        (keys[inactive], room),
        (keys[expired], room),
        (None, room),
        ("x" * 32, room),
        (keys[consumer], "999999"),
        (keys[consumer], "abc"),
        (keys[consumer], str(2**70)),
        (keys[stranger], str(caucus.pk)),
        (garbled.session_key, room),  # names no valid user id: Django's get_user raises
    ]
    return [h for h, _ in may_enter] + may_not, [e for _, e in may_enter] + [None] * len(may_not)


def test_a_batch_answers_each_handshake_as_it_would_alone(handshakes):
    batch, expected = handshakes
    assert [entered(services.room_entries([handshake])[0]) for handshake in batch] == expected
    assert [entered(found) for found in services.room_entries(batch)] == expected


def test_a_batch_of_handshakes_costs_four_queries_whatever_its_size(handshakes):
    handshakes, _ = handshakes
    for batch in (handshakes[:1], handshakes, handshakes * 10):
        with CaptureQueriesContext(connection) as queries:
            services.room_entries(batch)
        # The sessions, the memberships with their users' rows, the rooms; and for
        # the first alone, no user without membership to read on its own.
        assert len(queries) == (3 if batch == handshakes[:1] else 4)


def test_members_users_are_read_with_their_memberships(plenary, consumers):
    members = consumers(5)
    batch = [(session_cookie(m.user), str(plenary.pk)) for m in members]
    with CaptureQueriesContext(connection) as queries:
        found = services.room_entries(batch)
    assert [entered(f) for f in found] == [(plenary.pk, m.pk) for m in members]
    assert len(queries) == 3  # sessions, memberships with their users, rooms
    assert [f[1].user.pk for f in found] == [m.user_id for m in members]


def test_a_session_whose_password_changed_is_refused_in_a_batch(plenary, consumer, mediator):
    keys = [session_cookie(consumer.user), session_cookie(mediator.user)]
    consumer.user.set_password("a new one")
    consumer.user.save()
    found = services.room_entries([(key, str(plenary.pk)) for key in keys])
    assert [entered(f) for f in found] == [None, (plenary.pk, mediator.pk)]
    # As Django's auth.get_user does, the session that no longer verifies is flushed.
    assert not Session.objects.filter(pk=keys[0]).exists()


def test_welcomes_read_together_are_each_sockets_own(plenary, mediator, consumer):
    joined = [(plenary, consumer), (plenary, mediator)]
    alone = [services.welcome_frames([one])[0] for one in joined]
    with CaptureQueriesContext(connection) as queries:
        together = services.welcome_frames(joined)
    assert together == alone
    assert [w["me"]["member_id"] for w in together] == [str(consumer.pk), str(mediator.pk)]
    assert len(queries) <= 2  # the rooms, and the members count when its cache is stale


def test_sessions_loaded_together_load_as_djangos(consumer, mediator):
    live, other = session_cookie(consumer.user), session_cookie(mediator.user)
    expired = session_cookie(mediator.user)
    Session.objects.filter(pk=expired).update(expire_date=timezone.now() - timedelta(seconds=1))
    keys = [live, None, "x" * 32, "abc", expired, other, live]
    with CaptureQueriesContext(connection) as queries:
        stores = sessions.SessionStore.load_many(keys)
    assert len(queries) == 1
    for key, store in zip(keys, stores, strict=True):
        django = django_sessions.SessionStore(key)
        assert dict(store.items()) == django.load()
        assert store.session_key == django.session_key
    assert stores[0]["_auth_user_id"] == str(consumer.user_id)


def test_users_read_together_take_no_query_of_their_own(consumer, mediator, outsider):
    inactive = outsider
    inactive.is_active = False
    inactive.save()
    backend = auth.ModelBackend()
    with auth.users_read_together([consumer.user_id, inactive.pk, 10**9]):
        with CaptureQueriesContext(connection) as queries:
            assert backend.get_user(consumer.user_id).username == consumer.user.username
            assert backend.get_user(inactive.pk) is None
            assert backend.get_user(10**9) is None
        assert len(queries) == 0
        # An id not read together is read as outside.
        assert backend.get_user(mediator.user_id).pk == mediator.user_id
    assert backend.get_user(consumer.user_id).pk == consumer.user_id


def test_users_read_together_take_the_rows_given_and_read_the_others_at_once(consumer, mediator, outsider):
    given = get_user_model().objects.get(pk=consumer.user_id)
    backend = auth.ModelBackend()
    with CaptureQueriesContext(connection) as queries:
        with auth.users_read_together([consumer.user_id, mediator.user_id, outsider.pk], {consumer.user_id: given}):
            assert backend.get_user(consumer.user_id) is given
            assert backend.get_user(mediator.user_id).pk == mediator.user_id
            assert backend.get_user(outsider.pk).pk == outsider.pk
    assert len(queries) == 1  # the two not given, together


async def test_sockets_connecting_at_once_each_get_their_own_answer(plenary, consumers, pending, monkeypatch):
    members = await sync_to_async(consumers)(8)
    sizes = []
    real = services.room_entries

    def spy(batch):
        sizes.append(len(batch))
        return real(batch)

    monkeypatch.setattr(services, "room_entries", spy)
    users = [m.user for m in members] + [pending.user, None]
    comms = [await sync_to_async(communicator)(plenary.pk, user) for user in users]
    results = await asyncio.gather(*(comm.connect() for comm in comms))
    assert [connected for connected, _ in results] == [True] * 8 + [False, False]
    assert [code for _, code in results[8:]] == [4403, 4403]
    welcomes = [json.loads(await comm.receive_from(3)) for comm in comms[:8]]
    assert [w["me"]["member_id"] for w in welcomes] == [str(m.pk) for m in members]
    assert sum(sizes) == 10  # every socket's handshake was read through the batch
    assert len(sizes) < 10  # and they shared hops
    for comm in comms[:8]:
        await comm.disconnect()


# --- one trip where the process already hears the room (rooms.hub.Hub.hold) ---------------


async def test_a_socket_to_a_room_already_heard_is_read_in_one_trip_and_misses_nothing(
    plenary, mediator, consumer, monkeypatch
):
    """Where another socket of the room is in this process, the handshake's one read
    gives the welcome too (no second read after the join), and an event committed just
    after that read still reaches the socket, after its welcome: it was hearing the room
    before the read."""
    armed, welcome_reads = [], []
    real_read, real_welcomes = services.room_entries_welcomed, services.welcome_frames

    def read_then_a_message_is_posted(batch):  # the process's batcher keeps its handler: set first
        found = real_read(batch)
        if armed:
            services.message_post(member_id=mediator.pk, room_id=plenary.pk, body="juste après la lecture")
        return found

    def welcomes(joined):
        welcome_reads.append([member.pk for _, member in joined])
        return real_welcomes(joined)

    monkeypatch.setattr(services, "room_entries_welcomed", read_then_a_message_is_posted)
    monkeypatch.setattr(services, "welcome_frames", welcomes)
    first = await connect(plenary, mediator)
    assert welcome_reads == [[mediator.pk]]  # the first socket of the room: read again after the join
    armed.append(True)
    second = await connect(plenary, consumer)

    assert welcome_reads == [[mediator.pk]]  # one trip: the handshake's read gave the welcome
    frame = await second.recv()
    assert (frame["type"], frame["seq"], frame["body"]) == ("chat.message", second.welcome["last_seq"] + 1, "juste après la lecture")
    await first.close()
    await second.close()


async def test_a_refused_socket_to_a_room_already_heard_is_let_go_and_never_counted(plenary, mediator, consumer, pending, monkeypatch):
    """Held while its handshake is read, a socket counts for no one online and, refused
    (or its read failed), leaves nothing behind in the hub."""
    from rooms.hub import get_hub

    hub, room_id = get_hub(), str(plenary.pk)
    seen, failing = [], []
    real_read = services.room_entries_welcomed

    def read(batch):  # the process's batcher keeps its handler: set first
        seen.append((hub.local_count(room_id), len(hub.rooms.get(room_id, ()))))
        if failing:
            raise OSError("the database went away")
        return real_read(batch)

    monkeypatch.setattr(services, "room_entries_welcomed", read)
    first = await connect(plenary, mediator)
    assert await refused(plenary, pending) == 4403
    assert seen == [(0, 0), (1, 2)]  # the second heard the room during its read, counted for no one
    assert hub.rooms[room_id] == {first_conn for first_conn in hub.rooms[room_id] if first_conn.conn is not None}
    assert hub.local_count(room_id) == 1 and len(hub.rooms[room_id]) == 1

    failing.append(True)
    comm = await sync_to_async(communicator)(plenary.pk, consumer.user)
    with pytest.raises(OSError):  # the socket's task fails: daphne closes it and logs it
        await comm.connect()
    assert hub.local_count(room_id) == 1 and len(hub.rooms[room_id]) == 1
    await first.close()
    assert room_id not in hub.rooms
