"""Issue 5.2: ``manage.py rotate_master_key`` rewraps every room key under the newest
master key, touches no event, and lets the old master key be retired."""

import io
import threading
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone, translation

from crypto import keyring
from rooms import services
from rooms.models import Event, Phase, Role, Room, RoomKind
from tests.conftest import connect

from .conftest import (
    NEW_KEY,
    OLD_KEY,
    as_bytes,
    events_by_seq,
    post,
    raw_room,
    raw_rows,
    set_ring,
)


def rotate(*args, stderr=None) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command("rotate_master_key", *args, stdout=out, stderr=stderr or io.StringIO())
    return out.getvalue()


def caucus(mediation, mediator, member) -> Room:
    room, _, _ = services.caucus_open(
        member_id=mediator.pk, room_id=services.plenary_room(mediation).pk, target_id=member.pk
    )
    return room


def closed_mediation(make_mediation, make_member, *, closed_days_ago: int = 1):
    mediation = make_mediation(title="Assurance emprunteur")
    member = make_member(mediation, Role.CONSUMER)
    post(services.plenary_room(mediation), member, "Mon dossier est le n° 4521.")
    services.mediation_close(mediation=mediation, reason="deadline")
    services.Mediation.objects.filter(pk=mediation.pk).update(
        closed_at=timezone.now() - timedelta(days=closed_days_ago)
    )
    mediation.refresh_from_db()
    return mediation, member


@pytest.mark.django_db
def test_rotation_rewraps_every_room_and_the_old_key_can_then_be_retired(
    settings, mediation, plenary, mediator, consumers, company, make_mediation, make_member
):
    alice, bob = consumers(2)
    rooms = [plenary, caucus(mediation, mediator, alice), caucus(mediation, mediator, company)]
    sent = {}
    for room in rooms:
        for author, body in ((mediator, f"Bonjour dans {room.title}"), (alice, "Une question, € 12,00")):
            if room.kind == RoomKind.CAUCUS and author == alice and room.caucus_member_id != alice.pk:
                author = company
            sent[(room.pk, post(room, author, body)["seq"])] = body
    other, other_member = closed_mediation(make_mediation, make_member)
    services.mediation_shred(mediation=other)
    before_rooms = {room.pk: raw_room(room.pk) for room in rooms}
    before_events = raw_rows(Event)
    assert {row["master_key_id"] for row in before_rooms.values()} == {"mk-old"}

    set_ring(settings, NEW_KEY, OLD_KEY)  # the operator prepends a new key and deploys
    out = rotate("--batch-size", "2")

    assert "Room keys rewrapped: 3;" in out
    assert "now under it in all: 3;" in out
    assert "changed during the run and left as they were: 0;" in out
    assert "shredded (no key): 1;" in out and "failed: 0." in out
    assert "every key but mk-new can be removed" in out
    for room in rooms:
        row = raw_room(room.pk)
        old = before_rooms[room.pk]
        assert row["master_key_id"] == "mk-new"
        assert as_bytes(row["wrapped_key"]) != as_bytes(old["wrapped_key"])
        # Same data key under a new wrapping: that is why no message is re-encrypted.
        assert keyring.unwrap_data_key("mk-new", as_bytes(row["wrapped_key"])) == keyring.unwrap_data_key(
            "mk-old", as_bytes(old["wrapped_key"])
        )
    assert raw_rows(Event) == before_events, "rotation touched an event row"
    assert raw_room(services.plenary_room(other).pk)["wrapped_key"] is None

    set_ring(settings, NEW_KEY)  # the old key is retired
    for room in rooms:
        reader = mediator
        for seq, event in events_by_seq(room, reader).items():
            assert event["body"] == sent[(room.pk, seq)]
    assert post(plenary, bob, "Après la rotation")["body"] == "Après la rotation"
    assert events_by_seq(plenary, bob)[3]["body"] == "Après la rotation"
    shredded = events_by_seq(services.plenary_room(other), other_member)[1]
    assert shredded["body"] is None and shredded["shredded"] is True

    # Idempotent: a second run has nothing left to do.
    again = rotate()
    assert "Room keys rewrapped: 0;" in again and "now under it in all: 3;" in again


@pytest.mark.django_db(transaction=True)
async def test_after_rotation_and_retirement_history_and_live_messages_decrypt(
    settings, plenary, consumer, mediator
):
    await sync_to_async(post)(plenary, consumer, "Avant la rotation")
    set_ring(settings, NEW_KEY, OLD_KEY)
    await sync_to_async(rotate)()
    set_ring(settings, NEW_KEY)

    alice = await connect(plenary, consumer)
    med = await connect(plenary, mediator)
    await med.send({"type": "sync", "after_seq": 0, "ref": "s"})
    history = await med.recv()
    assert (history["type"], history["seq"], history["body"]) == ("chat.message", 1, "Avant la rotation")
    assert (await med.recv())["type"] == "synced"
    await alice.send({"type": "chat.send", "body": "Après la rotation", "ref": "c"})
    live = await med.recv_until("chat.message")
    assert (live["seq"], live["body"]) == (2, "Après la rotation")
    await med.send({"type": "sync", "after_seq": 1})
    assert (await med.recv())["body"] == "Après la rotation"
    await alice.close()
    await med.close()


@pytest.mark.django_db
def test_a_room_shredded_while_the_rotation_runs_stays_shredded(
    settings, monkeypatch, plenary, consumer, make_mediation, make_member
):
    """The shred lands between the rotation's read of a room and its write."""
    post(plenary, consumer, "Rien à signaler")
    other, _member = closed_mediation(make_mediation, make_member)
    other_room = services.plenary_room(other)
    real_rewrap = keyring.rewrap_data_key

    def rewrap_then_shred(key_id, wrapped):
        result = real_rewrap(key_id, wrapped)
        if raw_room(other_room.pk)["wrapped_key"] is not None:
            services.mediation_shred(mediation=other)
        return result

    monkeypatch.setattr(keyring, "rewrap_data_key", rewrap_then_shred)
    set_ring(settings, NEW_KEY, OLD_KEY)
    out = rotate()

    assert "Room keys rewrapped: 1;" in out  # the plenary of the live mediation
    assert "changed during the run and left as they were: 1;" in out
    row = raw_room(other_room.pk)
    assert row["wrapped_key"] is None and row["master_key_id"] == ""
    assert raw_room(plenary.pk)["master_key_id"] == "mk-new"


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_shred_holding_the_row_lock_wins_over_the_rotation(
    settings, monkeypatch, make_mediation, make_member
):
    """Two connections, for real: the shred has written and holds its lock (PostgreSQL: the
    row; SQLite: the database) when the rotation, which read the old key, comes to write.
    The rotation waits, then its conditional UPDATE no longer matches."""
    mediation, _member = closed_mediation(make_mediation, make_member)
    room = services.plenary_room(mediation)
    read, holding = threading.Event(), threading.Event()
    errors = []
    real_rewrap = keyring.rewrap_data_key

    def rewrap_and_let_the_shred_in(key_id, wrapped):
        result = real_rewrap(key_id, wrapped)
        read.set()
        assert holding.wait(10)
        return result

    def shred():
        try:
            assert read.wait(10)
            with transaction.atomic():
                services.mediation_shred(mediation=services.Mediation.objects.get(pk=mediation.pk))
                holding.set()
                time.sleep(0.5)  # the rotation is now blocked on our lock
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
            holding.set()
        finally:
            connection.close()

    monkeypatch.setattr(keyring, "rewrap_data_key", rewrap_and_let_the_shred_in)
    set_ring(settings, NEW_KEY, OLD_KEY)
    shredder = threading.Thread(target=shred)
    shredder.start()
    out = rotate()
    shredder.join(10)

    assert errors == []
    assert "Room keys rewrapped: 0;" in out
    assert "changed during the run and left as they were: 1;" in out
    assert raw_room(room.pk)["wrapped_key"] is None
    assert services.Mediation.objects.get(pk=mediation.pk).phase == Phase.SHREDDED


@pytest.mark.django_db
def test_a_room_under_a_key_missing_from_the_ring_is_reported_and_fails_the_command(
    settings, plenary, consumer, mediation, mediator
):
    post(plenary, consumer, "Bonjour")
    set_ring(settings, NEW_KEY)  # mk-old retired too early
    second = services.room_create(mediation=mediation, kind=RoomKind.CAUCUS, title="Aparté")
    stderr = io.StringIO()
    with pytest.raises(CommandError, match="1 room keys could not be rewrapped"):
        rotate(stderr=stderr)
    assert f"room {plenary.pk}: master key 'mk-old' is not in PALABRE_MASTER_KEYS" in stderr.getvalue()
    assert raw_room(plenary.pk)["master_key_id"] == "mk-old"  # left as it was
    assert raw_room(second.pk)["master_key_id"] == "mk-new"
    set_ring(settings, NEW_KEY, OLD_KEY)  # put back: nothing was lost
    assert events_by_seq(plenary, mediator)[1]["body"] == "Bonjour"


@pytest.mark.django_db
def test_a_room_created_under_the_old_key_during_the_run_is_rewrapped_too(
    settings, monkeypatch, plenary, mediation
):
    """A web process not yet deployed with the new ring creates a room mid-run."""
    set_ring(settings, NEW_KEY, OLD_KEY)
    real_rewrap = keyring.rewrap_data_key
    late = []

    def rewrap_while_a_room_is_created(key_id, wrapped):
        if not late:
            late.append(
                Room.objects.create(
                    mediation=mediation,
                    kind=RoomKind.CAUCUS,
                    title="Tardive",
                    wrapped_key=aes_key_wrap(OLD_KEY[1], bytes(range(32))),
                    master_key_id=OLD_KEY[0],
                )
            )
        return real_rewrap(key_id, wrapped)

    monkeypatch.setattr(keyring, "rewrap_data_key", rewrap_while_a_room_is_created)
    out = rotate("--batch-size", "1")
    assert "Room keys rewrapped: 2;" in out and "every key but mk-new" in out
    row = raw_room(late[0].pk)
    assert row["master_key_id"] == "mk-new"
    assert keyring.unwrap_data_key("mk-new", as_bytes(row["wrapped_key"])) == bytes(range(32))


@pytest.mark.django_db
def test_a_bad_batch_size_is_refused():
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        rotate("--batch-size", "0")
