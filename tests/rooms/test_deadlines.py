"""Time limits (issue 4, item 6): nothing is posted after ``closes_at``; the worker closes
due mediations by itself and pushes ``room.closed``; a late action closes too, so a dead
worker never lets a late message in."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from rooms import services
from rooms.models import Event, Mediation, Outcome, Phase, Room
from tests.conftest import connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_inprocess_worker(settings):
    settings.PALABRE_INPROCESS_DEADLINES = False


async def set_closes_at(mediation, when) -> None:
    await sync_to_async(Mediation.objects.filter(pk=mediation.pk).update)(closes_at=when)


async def room_closed_events(mediation) -> list[tuple[int, int]]:
    return await sync_to_async(
        lambda: list(Event.objects.filter(room__mediation=mediation, type="room.closed").values_list("room_id", "seq"))
    )()


def run_deadlines_once() -> str:
    out = io.StringIO()
    call_command("run_deadlines", "--once", stdout=out)
    return out.getvalue()


async def test_a_late_action_with_no_worker_closes_and_is_refused(no_inprocess_worker, mediation, plenary, mediator, consumer):
    med = await connect(plenary, mediator)
    alice = await connect(plenary, consumer)
    await alice.send({"type": "chat.send", "body": "à temps", "ref": "ok"})
    own = {f["type"]: f for f in (await alice.recv(), await alice.recv())}  # either order
    assert own["ack"] == {"type": "ack", "ref": "ok", "seq": 1}
    assert (await med.recv())["body"] == "à temps"
    await set_closes_at(mediation, timezone.now() - timedelta(milliseconds=1))

    await alice.send({"type": "chat.send", "body": "trop tard", "ref": "late"})
    frames = [await alice.recv(), await alice.recv(), await alice.recv()]
    by_type = {f["type"]: f for f in frames}
    assert set(by_type) == {"error", "mediation.phase", "room.closed"}
    assert (by_type["error"]["code"], by_type["error"]["ref"]) == ("room_closed", "late")
    change, closed = by_type["mediation.phase"], by_type["room.closed"]
    assert change == {"type": "mediation.phase", "seq": 2, "at": change["at"], "phase": "closed"}
    assert closed == {"type": "room.closed", "seq": 3, "at": closed["at"], "reason": "deadline"}
    assert [f for f in frames if f["type"] != "error"] == [change, closed]
    assert await med.recv_until("mediation.phase") == change
    assert await med.recv() == closed
    stored = await sync_to_async(Mediation.objects.get)(pk=mediation.pk)
    assert (stored.phase, stored.outcome) == (Phase.CLOSED, Outcome.EXPIRED)
    assert stored.closed_at is not None
    # Refused from now on, for every role, with no second closing.
    for sock in (alice, med):
        await sock.send({"type": "chat.send", "body": "encore", "ref": "again"})
        error = await sock.recv_until("error")
        assert (error["code"], error["ref"]) == ("room_closed", "again")
    await med.send({"type": "room.moderate", "moderated": True, "ref": "m"})
    assert (await med.recv_until("error"))["code"] == "room_closed"
    assert await room_closed_events(mediation) == [(plenary.pk, 3)]
    assert (await sync_to_async(Room.objects.get)(pk=plenary.pk)).last_seq == 3
    await med.close()
    await alice.close()


async def test_the_last_moment_before_the_deadline_is_open(no_inprocess_worker, mediation, plenary, consumer):
    alice = await connect(plenary, consumer)
    await set_closes_at(mediation, timezone.now() + timedelta(seconds=1))
    await alice.send({"type": "chat.send", "body": "juste à temps", "ref": "a"})
    assert await alice.recv_until("ack") == {"type": "ack", "ref": "a", "seq": 1}
    stored = await sync_to_async(Mediation.objects.get)(pk=mediation.pk)
    await asyncio.sleep(max(0.0, (stored.closes_at - timezone.now()).total_seconds()))
    await alice.send({"type": "chat.send", "body": "juste trop tard", "ref": "b"})
    assert (await alice.recv_until("error"))["code"] == "room_closed"
    await alice.close()


async def test_run_deadlines_once_closes_and_pushes_to_every_room(no_inprocess_worker, mediation, plenary, mediator, consumer, make_mediation):
    caucus_room, *_ = await sync_to_async(services.caucus_open)(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    later = await sync_to_async(make_mediation)(title="Plus tard")
    in_plenary = await connect(plenary, consumer)
    in_caucus = await connect(caucus_room, mediator)
    await set_closes_at(mediation, timezone.now() - timedelta(seconds=1))
    # Nobody acts: the worker's pass closes and pushes.
    out = await sync_to_async(run_deadlines_once)()
    assert "mediations_close_due=1" in out
    change = await in_plenary.recv()
    assert (change["type"], change["seq"], change["phase"]) == ("mediation.phase", 1, "closed")
    closed = await in_plenary.recv()
    assert (closed["type"], closed["seq"], closed["reason"]) == ("room.closed", 2, "deadline")
    closed_caucus = await in_caucus.recv()
    assert (closed_caucus["type"], closed_caucus["seq"]) == ("room.closed", 1)
    assert sorted(await room_closed_events(mediation)) == sorted([(plenary.pk, 2), (caucus_room.pk, 1)])
    # Idempotent, and a mediation not yet due stays open.
    assert "mediations_close_due=0" in await sync_to_async(run_deadlines_once)()
    assert await room_closed_events(mediation) != [] and len(await room_closed_events(mediation)) == 2
    assert (await sync_to_async(Mediation.objects.get)(pk=later.pk)).phase == Phase.DIALOGUE
    assert await in_plenary.nothing(0.1)
    # A newcomer is welcomed into a closed room, and cannot post.
    late = await connect(plenary, consumer)
    assert late.welcome["room"]["phase"] == "closed" and late.welcome["last_seq"] == 2
    await late.send({"type": "chat.send", "body": "x", "ref": "z"})
    assert (await late.recv())["code"] == "room_closed"
    for sock in (in_plenary, in_caucus, late):
        await sock.close()


async def test_embedded_server_closes_by_itself(settings, mediation, plenary, consumer):
    settings.PALABRE_INPROCESS_DEADLINES = True
    alice = await connect(plenary, consumer)
    await set_closes_at(mediation, timezone.now() + timedelta(milliseconds=300))
    change = await alice.recv(timeout=5)
    assert (change["type"], change["phase"]) == ("mediation.phase", "closed")
    closed = await alice.recv(timeout=5)
    assert (closed["type"], closed["reason"]) == ("room.closed", "deadline")
    assert (await sync_to_async(Mediation.objects.get)(pk=mediation.pk)).phase == Phase.CLOSED
    await alice.close()


async def test_concurrent_closers_close_once(no_inprocess_worker, mediation, plenary):
    await set_closes_at(mediation, timezone.now() - timedelta(seconds=1))
    def close_due() -> int:
        try:
            return services.mediations_close_due()
        finally:
            connection.close()  # its own thread, its own connection

    results = await asyncio.gather(*(sync_to_async(close_due, thread_sensitive=False)() for _ in range(4)))
    assert sum(results) == 1
    assert await room_closed_events(mediation) == [(plenary.pk, 2)]
