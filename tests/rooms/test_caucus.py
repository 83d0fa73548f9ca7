"""Caucus rooms (issue 4, item 4): ``caucus.open`` → ``caucus.opened`` to the mediator
(with ``ref``) and to the member (without); nobody else can join, read or list it."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from rooms import services
from rooms.models import MemberStatus, Role, Room, RoomKind
from tests.conftest import connect, refused

pytestmark = pytest.mark.django_db(transaction=True)


def http(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


async def get(user, url):
    response = await sync_to_async(lambda: http(user).get(url))()
    return response.status_code, response.json()


async def open_caucus(sock, target, ref="c") -> dict:
    await sock.send({"type": "caucus.open", "member_id": str(target.pk), "ref": ref})
    return await sock.recv_until("caucus.opened")


async def test_caucus_opened_to_the_mediator_and_the_member_only(plenary, mediator, consumer, consumers, company):
    other = (await sync_to_async(consumers)(1))[0]
    med = await connect(plenary, mediator)
    alice = await connect(plenary, consumer)
    bob = await connect(plenary, other)
    comp = await connect(plenary, company)
    answer = await open_caucus(med, consumer, ref="open-1")
    room = await sync_to_async(Room.objects.get)(kind=RoomKind.CAUCUS, caucus_member=consumer)
    expected_room = {"id": str(room.pk), "kind": "caucus", "title": room.title}
    assert answer == {
        "type": "caucus.opened",
        "ref": "open-1",
        "room": expected_room,
        "with": {"member_id": str(consumer.pk), "display_name": consumer.display_name, "role": "consumer"},
    }
    told = await alice.recv()
    assert told == {
        "type": "caucus.opened",
        "room": expected_room,
        "with": {"member_id": str(mediator.pk), "display_name": mediator.display_name, "role": "mediator"},
    }
    for sock in (med, alice, bob, comp):
        assert await sock.nothing(0.1)
    # Not logged in the plenary room: nothing there tells anyone a caucus exists.
    assert (await sync_to_async(Room.objects.get)(pk=plenary.pk)).last_seq == 0
    for sock in (med, alice, bob, comp):
        await sock.close()


async def test_caucus_open_returns_the_same_room(plenary, mediator, consumer):
    med = await connect(plenary, mediator)
    first = await open_caucus(med, consumer, "a")
    second = await open_caucus(med, consumer, "b")
    assert first["room"] == second["room"] and second["ref"] == "b"
    assert await sync_to_async(Room.objects.filter(kind=RoomKind.CAUCUS).count)() == 1
    await med.close()


async def test_caucus_with_the_company(plenary, mediator, company):
    med = await connect(plenary, mediator)
    answer = await open_caucus(med, company)
    assert answer["with"]["role"] == "company"
    caucus = answer["room"]["id"]
    comp = await connect(caucus, company)
    assert comp.welcome["room"]["kind"] == "caucus"
    await comp.close()
    await med.close()


async def test_caucus_open_refusals(plenary, mediation, mediator, make_member, make_mediation):
    other_mediator = await sync_to_async(make_member)(mediation, Role.MEDIATOR)
    pending = await sync_to_async(make_member)(mediation, Role.CONSUMER, MemberStatus.PENDING)
    elsewhere = await sync_to_async(make_member)(await sync_to_async(make_mediation)(title="Autre"), Role.CONSUMER)
    med = await connect(plenary, mediator)
    for target, code in (
        (other_mediator, "bad_request"),
        (mediator, "bad_request"),
        (pending, "bad_request"),
        (elsewhere, "not_found"),
    ):
        await med.send({"type": "caucus.open", "member_id": str(target.pk), "ref": "x"})
        error = await med.recv()
        assert (error["type"], error["code"], error["ref"]) == ("error", code, "x"), target
    await med.send({"type": "caucus.open", "member_id": "999999", "ref": "y"})
    assert (await med.recv())["code"] == "not_found"
    assert await sync_to_async(Room.objects.filter(kind=RoomKind.CAUCUS).count)() == 0
    await med.close()


async def test_nobody_else_can_join_read_or_list_a_caucus(plenary, mediation, mediator, consumer, consumers, company, outsider, pending):
    other = (await sync_to_async(consumers)(1))[0]
    room, _m, _t = await sync_to_async(services.caucus_open)(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    # The two of them talk.
    alice = await connect(room, consumer)
    med = await connect(room, mediator)
    assert alice.welcome["room"] == {
        "id": str(room.pk),
        "kind": "caucus",
        "mediation_id": str(mediation.pk),
        "title": room.title,
        "phase": "dialogue",
        "closes_at": mediation.closes_at.isoformat(),
        "moderated": False,
    }
    assert alice.welcome["members_count"] == 2
    listening = await connect(plenary, other)
    await alice.send({"type": "chat.send", "body": "entre nous", "ref": "p"})
    assert (await med.recv_until("chat.message"))["body"] == "entre nous"
    assert await listening.nothing(0.2)
    # Nobody else joins.
    for intruder in (other, company, pending, outsider, None):
        assert await refused(room, intruder) == 4403
    # Nobody else reads its events.
    for intruder in (other.user, company.user, pending.user, outsider):
        status, body = await get(intruder, f"/api/v1/rooms/{room.pk}/events")
        assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await get(None, f"/api/v1/rooms/{room.pk}/events")
    assert status == 401
    # The two of them do.
    for user in (consumer.user, mediator.user):
        status, body = await get(user, f"/api/v1/rooms/{room.pk}/events")
        assert status == 200 and [e["body"] for e in body["events"]] == ["entre nous"]
    # Nobody else lists it.
    status, rooms = await get(other.user, f"/api/v1/mediations/{mediation.pk}/rooms")
    assert status == 200 and rooms == [{"id": str(plenary.pk), "kind": "plenary", "title": plenary.title}]
    status, rooms = await get(company.user, f"/api/v1/mediations/{mediation.pk}/rooms")
    assert [r["kind"] for r in rooms] == ["plenary"]
    # And the plenary's sync says nothing of it.
    await listening.send({"type": "sync", "after_seq": 0})
    assert (await listening.recv())["type"] == "synced"
    for sock in (alice, med, listening):
        await sock.close()


async def test_rooms_endpoint(plenary, mediation, mediator, consumer, consumers, company, outsider, pending):
    other = (await sync_to_async(consumers)(1))[0]
    with_alice, *_ = await sync_to_async(services.caucus_open)(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    with_company, *_ = await sync_to_async(services.caucus_open)(member_id=mediator.pk, room_id=plenary.pk, target_id=company.pk)
    with_bob, *_ = await sync_to_async(services.caucus_open)(member_id=mediator.pk, room_id=plenary.pk, target_id=other.pk)

    def item(room):
        return {"id": str(room.pk), "kind": room.kind, "title": room.title}

    url = f"/api/v1/mediations/{mediation.pk}/rooms"
    assert await get(mediator.user, url) == (200, [item(plenary), item(with_alice), item(with_company), item(with_bob)])
    assert await get(consumer.user, url) == (200, [item(plenary), item(with_alice)])
    assert await get(company.user, url) == (200, [item(plenary), item(with_company)])
    for intruder in (outsider, pending.user):
        status, body = await get(intruder, url)
        assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _body = await get(None, url)
    assert status == 401
    status, body = await get(consumer.user, "/api/v1/mediations/987654/rooms")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_the_member_hears_of_a_caucus_on_every_socket(plenary, mediator, consumer):
    caucus_room, *_ = await sync_to_async(services.caucus_open)(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    in_plenary = await connect(plenary, consumer)
    in_caucus = await connect(caucus_room, consumer)
    med = await connect(plenary, mediator)
    await open_caucus(med, consumer)
    assert (await in_plenary.recv())["type"] == "caucus.opened"
    assert (await in_caucus.recv())["type"] == "caucus.opened"
    for sock in (in_plenary, in_caucus, med):
        await sock.close()


async def test_only_plenary_is_moderated(plenary, mediator, consumer):
    caucus_room, *_ = await sync_to_async(services.caucus_open)(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    med = await connect(caucus_room, mediator)
    await med.send({"type": "room.moderate", "moderated": True, "ref": "m"})
    error = await med.recv()
    assert (error["code"], error["ref"]) == ("bad_request", "m")
    await med.close()
