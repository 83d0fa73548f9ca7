"""Moderation (issue 4, item 5): mute/unmute (logged), redaction, moderated mode."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from rooms import services
from rooms.models import Event, Membership, Role, Room
from tests.conftest import connect

pytestmark = pytest.mark.django_db(transaction=True)


async def everyone(plenary, *members):
    return [await connect(plenary, m) for m in members]


async def close_all(socks):
    for sock in socks:
        await sock.close()


async def last_seq(room) -> int:
    return (await sync_to_async(Room.objects.get)(pk=room.pk)).last_seq


async def test_mute_is_logged_to_everyone_and_silences(plenary, mediator, consumer, company, consumers):
    bob = (await sync_to_async(consumers)(1))[0]
    socks = med, alice, comp, bobs = await everyone(plenary, mediator, consumer, company, bob)
    await med.send({"type": "member.mute", "member_id": str(consumer.pk), "ref": "m"})
    assert await med.recv_until("ack") == {"type": "ack", "ref": "m", "seq": 1}
    event = await sync_to_async(Event.objects.get)(room=plenary, seq=1)
    expected = {"type": "member.muted", "seq": 1, "at": event.at.isoformat(), "member_id": str(consumer.pk), "until": None}
    for sock in (alice, comp, bobs):
        assert await sock.recv() == expected
    member = await sync_to_async(Membership.objects.get)(pk=consumer.pk)
    assert (member.muted, member.muted_until) == (True, None)
    # The muted member's open socket is refused from now on; nothing is stored.
    await alice.send({"type": "chat.send", "body": "je proteste", "ref": "c"})
    error = await alice.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "muted", "c")
    assert await last_seq(plenary) == 1
    assert await bobs.nothing(0.1)
    # Others still talk; the muted member still reads, syncs and pings.
    await bobs.send({"type": "chat.send", "body": "moi je peux"})
    assert (await alice.recv_until("chat.message"))["body"] == "moi je peux"
    await alice.send({"type": "sync", "after_seq": 0})
    assert (await alice.recv_until("synced"))["last_seq"] == 2
    await close_all(socks)


async def test_muted_everywhere_in_the_mediation(plenary, mediator, consumer):
    caucus_room, *_ = await sync_to_async(services.caucus_open)(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    await sync_to_async(services.member_mute)(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk, until=None)
    alice = await connect(caucus_room, consumer)
    await alice.send({"type": "chat.send", "body": "x", "ref": "c"})
    assert (await alice.recv())["code"] == "muted"
    await alice.close()


async def test_mute_until_expires(plenary, mediator, consumer):
    med, alice = await everyone(plenary, mediator, consumer)
    until = timezone.now() + timedelta(seconds=1)
    await med.send({"type": "member.mute", "member_id": str(consumer.pk), "until": until.isoformat(), "ref": "m"})
    muted = await alice.recv()
    assert muted["type"] == "member.muted" and muted["until"] == until.isoformat()
    await alice.send({"type": "chat.send", "body": "trop tôt", "ref": "early"})
    assert (await alice.recv())["code"] == "muted"
    await asyncio.sleep(max(0.0, (until - timezone.now()).total_seconds()) + 0.05)
    await alice.send({"type": "chat.send", "body": "enfin", "ref": "late"})
    assert await alice.recv_until("ack") == {"type": "ack", "ref": "late", "seq": 2}
    await close_all((med, alice))


async def test_unmute_is_logged_and_lets_the_member_post(plenary, mediator, consumer, company):
    await sync_to_async(services.member_mute)(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk, until=None)
    socks = med, alice, comp = await everyone(plenary, mediator, consumer, company)
    await med.send({"type": "member.unmute", "member_id": str(consumer.pk), "ref": "u"})
    assert await med.recv_until("ack") == {"type": "ack", "ref": "u", "seq": 2}
    event = await sync_to_async(Event.objects.get)(room=plenary, seq=2)
    expected = {"type": "member.unmuted", "seq": 2, "at": event.at.isoformat(), "member_id": str(consumer.pk)}
    assert await alice.recv() == expected
    assert await comp.recv() == expected
    await alice.send({"type": "chat.send", "body": "merci", "ref": "c"})
    assert await alice.recv_until("ack") == {"type": "ack", "ref": "c", "seq": 3}
    member = await sync_to_async(Membership.objects.get)(pk=consumer.pk)
    assert (member.muted, member.muted_until) == (False, None)
    await close_all(socks)


async def test_mute_refusals_store_nothing(plenary, mediation, mediator, make_member, make_mediation, consumer):
    other_mediator = await sync_to_async(make_member)(mediation, Role.MEDIATOR)
    stranger = await sync_to_async(make_member)(await sync_to_async(make_mediation)(title="Autre"), Role.CONSUMER)
    med = await connect(plenary, mediator)
    past = (timezone.now() - timedelta(seconds=1)).isoformat()
    for frame, code in (
        ({"member_id": str(other_mediator.pk)}, "forbidden"),
        ({"member_id": str(mediator.pk)}, "forbidden"),
        ({"member_id": str(stranger.pk)}, "not_found"),
        ({"member_id": "999999"}, "not_found"),
        ({"member_id": str(consumer.pk), "until": past}, "bad_request"),
    ):
        await med.send({"type": "member.mute", "ref": "m", **frame})
        error = await med.recv()
        assert (error["type"], error["code"], error["ref"]) == ("error", code, "m"), frame
    await med.send({"type": "member.unmute", "member_id": str(stranger.pk), "ref": "u"})
    assert (await med.recv())["code"] == "not_found"
    assert await last_seq(plenary) == 0
    assert not await sync_to_async(Membership.objects.filter(muted=True).exists)()
    await med.close()


async def test_redaction_is_logged_and_deletes_the_body(plenary, mediator, consumer, company):
    socks = med, alice, comp = await everyone(plenary, mediator, consumer, company)
    await alice.send({"type": "chat.send", "body": "propos regrettable"})
    assert {(await alice.recv())["type"] for _ in range(2)} == {"ack", "chat.message"}
    await med.recv_until("chat.message")
    await comp.recv_until("chat.message")
    await med.send({"type": "message.redact", "seq": 1, "ref": "r"})
    # The mediator gets the ack and the broadcast, in either order.
    theirs = {f["type"]: f for f in [await med.recv(), await med.recv()]}
    assert theirs["ack"] == {"type": "ack", "ref": "r", "seq": 2}
    event = await sync_to_async(Event.objects.get)(room=plenary, seq=2)
    expected = {"type": "message.redacted", "seq": 2, "at": event.at.isoformat(), "target_seq": 1}
    assert theirs["message.redacted"] == expected
    assert await alice.recv() == expected
    assert await comp.recv() == expected
    target = await sync_to_async(Event.objects.get)(room=plenary, seq=1)
    assert target.redacted_at is not None and target.ciphertext is None
    # Twice, not a message, nothing there.
    for seq, code in ((1, "bad_request"), (2, "not_found"), (99, "not_found")):
        await med.send({"type": "message.redact", "seq": seq, "ref": "again"})
        error = await med.recv()
        assert (error["code"], error["ref"]) == (code, "again"), seq
    assert await last_seq(plenary) == 2
    await close_all(socks)


async def test_moderated_room_lets_only_mediator_and_company_post(plenary, mediator, consumer, company):
    socks = med, alice, comp = await everyone(plenary, mediator, consumer, company)
    await med.send({"type": "room.moderate", "moderated": True, "ref": "on"})
    assert await med.recv_until("ack") == {"type": "ack", "ref": "on", "seq": 1}
    event = await sync_to_async(Event.objects.get)(room=plenary, seq=1)
    expected = {"type": "room.moderated", "seq": 1, "at": event.at.isoformat(), "moderated": True}
    assert await alice.recv() == expected
    assert await comp.recv() == expected
    await alice.send({"type": "chat.send", "body": "puis-je ?", "ref": "c"})
    error = await alice.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "forbidden", "c")
    assert await last_seq(plenary) == 1
    await comp.send({"type": "chat.send", "body": "La société répond", "ref": "co"})
    assert await comp.recv_until("ack") == {"type": "ack", "ref": "co", "seq": 2}
    await med.send({"type": "chat.send", "body": "Le médiateur parle", "ref": "me"})
    assert await med.recv_until("ack") == {"type": "ack", "ref": "me", "seq": 3}
    # A newcomer learns it from the welcome.
    late = await connect(plenary, consumer)
    assert late.welcome["room"]["moderated"] is True
    await med.send({"type": "room.moderate", "moderated": False, "ref": "off"})
    await med.recv_until("ack")
    assert (await alice.recv_until("room.moderated"))["moderated"] is False
    await alice.send({"type": "chat.send", "body": "à nouveau", "ref": "c2"})
    assert await alice.recv_until("ack") == {"type": "ack", "ref": "c2", "seq": 5}
    await close_all((*socks, late))
