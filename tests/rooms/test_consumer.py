"""The room socket (issue 4, item 2): handshake, welcome, chat, sync, ping, the
language of error frames, write-first and the exact recipients of each broadcast."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from rooms import broadcast, services
from rooms.models import Event, Role, Room
from tests.conftest import communicator, connect, refused, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def post(member, room, body: str) -> dict:
    return await sync_to_async(services.message_post)(member_id=member.pk, room_id=room.pk, body=body)


# --- handshake ----------------------------------------------------------------------------------


async def test_refused_at_the_handshake_with_4403(plenary, pending, outsider, make_mediation, make_member, consumer):
    other = await sync_to_async(make_mediation)(title="Autre")
    stranger = await sync_to_async(make_member)(other, Role.CONSUMER)
    assert await refused(plenary, None) == 4403  # anonymous
    assert await refused(plenary, outsider) == 4403  # not a member
    assert await refused(plenary, pending) == 4403  # pending
    assert await refused(plenary, stranger) == 4403  # member of another mediation
    assert await refused(999_999, consumer) == 4403  # no such room


async def test_a_socket_closed_by_the_hub_before_its_accept_is_refused_and_left(plenary, consumer, monkeypatch):
    """The hub may close a user's sockets (``hub.close_user``) while one of them waits for
    its welcome, after its join and before its accept: that socket is refused, is never
    accepted or sent its welcome, and leaves the hub; the member's next socket gets in."""
    from rooms.hub import Hub, get_hub

    join = Hub.join

    async def join_then_closed(self, conn):
        await join(self, conn)
        await self.dispatch({"type": "hub.close_user", "user_id": conn.user_id, "code": 4403})

    monkeypatch.setattr(Hub, "join", join_then_closed)
    comm = await sync_to_async(communicator)(plenary.pk, consumer.user)
    connected, code = await comm.connect()
    assert (connected, code) == (False, 4403)
    assert await comm.receive_nothing(0.2)  # no accept, no welcome after the refusal
    await comm.disconnect()  # raises if the consumer failed
    assert get_hub().local_count(str(plenary.pk)) == 0
    monkeypatch.undo()
    sock = await connect(plenary, consumer)
    assert get_hub().local_count(str(plenary.pk)) == 1
    await sock.comm.disconnect()


async def handshake_with(room, session: str) -> int | None:
    """None when the socket got its welcome, else its close code."""
    comm = await sync_to_async(communicator)(room.pk, headers=[(b"cookie", f"sessionid={session}".encode())])
    connected, code = await comm.connect()
    if not connected:
        return code
    first = await comm.receive_output(3)
    await comm.disconnect()
    return None if first["type"] == "websocket.send" else first["code"]


@pytest.mark.parametrize("change", ["password", "inactive", "expired", "logged_out"])
async def test_a_session_that_no_longer_authenticates_is_refused(plenary, consumer, change):
    session = await sync_to_async(session_cookie)(consumer.user)
    assert await handshake_with(plenary, session) is None

    def spoil():
        user = consumer.user
        if change == "password":  # Django's session hash: a new password ends every session
            user.set_password("a new one")
            user.save()
        elif change == "inactive":
            user.is_active = False
            user.save()
        elif change == "expired":
            Session.objects.filter(pk=session).update(expire_date=timezone.now() - timedelta(seconds=1))
        else:
            Session.objects.filter(pk=session).delete()

    await sync_to_async(spoil)()
    assert await handshake_with(plenary, session) == 4403


@pytest.mark.parametrize(
    "origin",
    [(b"origin", b"http://evil.example"), (b"origin", b"null"), None],
    ids=["foreign", "null", "missing"],
)
async def test_bad_origin_is_refused_before_any_frame(plenary, consumer, origin):
    # Refused before accept: daphne answers the upgrade with HTTP 403 (tests/wire).
    comm = await sync_to_async(communicator)(plenary.pk, consumer.user, origin)
    connected, _code = await comm.connect()
    assert connected is False
    assert await comm.receive_nothing(0.1)


async def test_allowed_origins_of_the_embedded_default(plenary, consumer, settings):
    for origin in (b"http://127.0.0.1:8000", b"http://localhost:5173"):
        sock = await connect(plenary, consumer, origin=(b"origin", origin))
        await sock.close()


async def test_welcome_has_the_exact_shape(plenary, mediation, consumer, mediator, consumers):
    await sync_to_async(consumers)(2)
    await post(mediator, plenary, "premier")
    sock = await connect(plenary, consumer)
    assert sock.welcome == {
        "type": "welcome",
        "room": {
            "id": str(plenary.pk),
            "kind": "plenary",
            "mediation_id": str(mediation.pk),
            "title": plenary.title,
            "phase": "dialogue",
            "closes_at": mediation.closes_at.isoformat(),
            "moderated": False,
        },
        "me": {"member_id": str(consumer.pk), "role": "consumer", "display_name": consumer.display_name},
        "last_seq": 1,
        "members_count": 4,
    }
    assert await sock.nothing()
    await sock.close()


async def test_too_many_sockets_of_one_user_are_refused(plenary, consumer, settings):
    settings.PALABRE_MAX_SOCKETS_PER_USER = 2
    first = await connect(plenary, consumer)
    second = await connect(plenary, consumer)
    assert await refused(plenary, consumer) == 4403
    await first.close()
    third = await connect(plenary, consumer)
    await second.close()
    await third.close()


async def test_a_socket_closes_without_waiting_for_the_database_thread(plenary, consumer):
    """A room's deadline closes all its sockets at once: no close may queue a hop behind
    the process's one database thread (Channels' stock disconnect made one per socket),
    and a close never waits for the database."""
    import asyncio
    import threading

    from channels.db import database_sync_to_async

    from rooms.hub import get_hub

    sock = await connect(plenary, consumer)
    busy, release = threading.Event(), threading.Event()

    def hold_the_database_thread():
        busy.set()
        release.wait(10)

    held = asyncio.ensure_future(database_sync_to_async(hold_the_database_thread)())
    try:
        assert await asyncio.to_thread(busy.wait, 5)
        await sock.comm.send_input({"type": "websocket.disconnect", "code": 1000})
        closed, _ = await asyncio.wait([sock.comm.future], timeout=5)
        assert closed, "the socket's close waited for the database thread"
        assert get_hub().local_count(str(plenary.pk)) == 0
    finally:
        release.set()
        await held
        await sock.comm.wait()


# --- chat -----------------------------------------------------------------------------------------


async def test_chat_message_exact_frame_to_every_member_and_ack(plenary, consumer, mediator, company):
    alice = await connect(plenary, consumer)
    med = await connect(plenary, mediator)
    comp = await connect(plenary, company)
    await alice.send({"type": "chat.send", "body": "Bonjour à tous", "ref": "r1"})
    own = [await alice.recv(), await alice.recv()]
    by_type = {f["type"]: f for f in own}
    assert set(by_type) == {"ack", "chat.message"}
    assert by_type["ack"] == {"type": "ack", "ref": "r1", "seq": 1}
    event = await sync_to_async(Event.objects.get)(room=plenary, seq=1)
    expected = {
        "type": "chat.message",
        "seq": 1,
        "at": event.at.isoformat(),
        "id": str(event.pk),
        "author": {"member_id": str(consumer.pk), "display_name": consumer.display_name, "role": "consumer"},
        "body": "Bonjour à tous",
    }
    assert by_type["chat.message"] == expected
    assert await med.recv() == expected
    assert await comp.recv() == expected
    for sock in (alice, med, comp):
        assert await sock.nothing()
        await sock.close()


async def test_chat_stays_in_its_room(make_mediation, make_member, mediation, plenary, consumer):
    other = await sync_to_async(make_mediation)(title="Autre")
    other_room = await sync_to_async(services.plenary_room)(other)
    stranger = await sync_to_async(make_member)(other, Role.CONSUMER)
    here = await connect(plenary, consumer)
    there = await connect(other_room, stranger)
    await here.send({"type": "chat.send", "body": "ici"})
    await here.recv_until("chat.message")
    assert await there.nothing(0.3)
    await here.close()
    await there.close()


async def test_body_is_stored_encrypted(plenary, consumer):
    sock = await connect(plenary, consumer)
    await sock.send({"type": "chat.send", "body": "secret de famille"})
    await sock.recv_until("chat.message")
    event = await sync_to_async(Event.objects.get)(room=plenary, seq=1)
    assert b"secret de famille" not in bytes(event.ciphertext)
    assert "body" not in event.data and event.secret_fields == ["body"]
    await sock.close()


async def test_ack_without_ref_carries_null(plenary, consumer):
    sock = await connect(plenary, consumer)
    await sock.send({"type": "chat.send", "body": "x"})
    ack = await sock.recv_until("ack")
    assert ack == {"type": "ack", "ref": None, "seq": 1}
    await sock.close()


# --- write first, then fan out --------------------------------------------------------------------


async def test_an_event_is_committed_before_its_broadcast(plenary, consumer, mediator, monkeypatch):
    seen: list[tuple[bool, bool]] = []
    real_send = broadcast._send

    def checking_send(group, message):
        seq = int(message["text"].split('"seq":')[1].split(",")[0])
        # Runs from on_commit: no transaction is open any more, and the row is there.
        seen.append((transaction.get_connection().in_atomic_block, Event.objects.filter(room=plenary, seq=seq).exists()))
        real_send(group, message)

    monkeypatch.setattr(broadcast, "_send", checking_send)
    med = await connect(plenary, mediator)
    sock = await connect(plenary, consumer)
    await sock.send({"type": "chat.send", "body": "un", "ref": "a"})
    ack = await sock.recv_until("ack")
    assert ack["seq"] == 1
    assert (await med.recv())["seq"] == 1
    assert seen == [(False, True)]
    await sock.close()
    await med.close()


async def test_a_rolled_back_write_is_never_broadcast_and_leaves_no_gap(plenary, consumer, mediator):
    med = await connect(plenary, mediator)

    def doomed():
        with transaction.atomic():
            services.message_post(member_id=consumer.pk, room_id=plenary.pk, body="jamais")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await sync_to_async(doomed)()
    assert await med.nothing(0.3)
    frame = await post(consumer, plenary, "ensuite")
    assert frame["seq"] == 1
    assert (await med.recv())["body"] == "ensuite"
    await med.close()


# --- sync ----------------------------------------------------------------------------------------------


async def test_sync_replays_the_log_then_synced(plenary, consumer, mediator):
    for i in range(5):
        await post(mediator, plenary, f"m{i}")
    sock = await connect(plenary, consumer)
    await sock.send({"type": "sync", "after_seq": 2, "ref": "s"})
    replay = [await sock.recv() for _ in range(4)]
    assert [(f["type"], f.get("seq")) for f in replay] == [
        ("chat.message", 3),
        ("chat.message", 4),
        ("chat.message", 5),
        ("synced", None),
    ]
    assert [f["body"] for f in replay[:3]] == ["m2", "m3", "m4"]
    assert replay[3] == {"type": "synced", "ref": "s", "last_seq": 5}
    await sock.send({"type": "sync", "after_seq": 5})
    assert await sock.recv() == {"type": "synced", "ref": None, "last_seq": 5}
    await sock.send({"type": "sync", "after_seq": 0})
    frames = [await sock.recv() for _ in range(6)]
    assert [f.get("seq") for f in frames[:5]] == [1, 2, 3, 4, 5]
    assert frames[5]["type"] == "synced"
    await sock.close()


async def test_sync_pages_through_a_long_log(plenary, consumer, mediator, monkeypatch):
    from rooms import consumers

    monkeypatch.setattr(consumers, "SYNC_PAGE", 7)
    for i in range(23):
        await post(mediator, plenary, f"m{i}")
    sock = await connect(plenary, consumer)
    await sock.send({"type": "sync", "after_seq": 0})
    seqs = []
    while True:
        frame = await sock.recv()
        if frame["type"] == "synced":
            break
        seqs.append(frame["seq"])
    assert seqs == list(range(1, 24))
    assert frame["last_seq"] == 23
    await sock.close()


async def test_sync_shows_redacted_bodies_as_null(plenary, consumer, mediator):
    await post(consumer, plenary, "à retirer")
    await sync_to_async(services.message_redact)(member_id=mediator.pk, room_id=plenary.pk, seq=1)
    sock = await connect(plenary, consumer)
    await sock.send({"type": "sync", "after_seq": 0})
    first, second, synced = (await sock.recv(), await sock.recv(), await sock.recv())
    assert first["seq"] == 1 and first["body"] is None and first["redacted"] is True
    assert second == {"type": "message.redacted", "seq": 2, "at": second["at"], "target_seq": 1}
    assert synced["last_seq"] == 2
    await sock.close()


@pytest.mark.parametrize("after", [None, "3", -1, 1.5, True, [1]])
async def test_sync_with_a_bad_after_seq_is_bad_request(plenary, consumer, after):
    sock = await connect(plenary, consumer)
    frame = {"type": "sync", "ref": "s"}
    if after is not None:
        frame["after_seq"] = after
    await sock.send(frame)
    error = await sock.recv()
    assert error["type"] == "error" and error["code"] == "bad_request" and error["ref"] == "s"
    await sock.send({"type": "ping"})
    assert (await sock.recv())["type"] == "pong"
    await sock.close()


# --- ping -----------------------------------------------------------------------------------------------


async def test_ping_pong(plenary, consumer):
    sock = await connect(plenary, consumer)
    await sock.send({"type": "ping", "ref": "p"})
    assert await sock.recv() == {"type": "pong", "ref": "p"}
    await sock.send({"type": "ping"})
    assert await sock.recv() == {"type": "pong", "ref": None}
    await sock.close()


# --- language of the error frames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([(b"accept-language", b"en-GB,en;q=0.9")], "Unknown frame type."),
        ([(b"accept-language", b"fr-FR,fr;q=0.9,en;q=0.5")], "Type de trame inconnu."),
        ([], "Type de trame inconnu."),
        ([(b"accept-language", b"de")], "Type de trame inconnu."),
        ([(b"accept-language", b"fr"), (b"cookie", b"django_language=en")], "Unknown frame type."),
    ],
    ids=["en", "fr", "default", "unsupported", "cookie"],
)
async def test_error_frames_follow_the_handshake_language(plenary, consumer, headers, message):
    sock = await connect(plenary, consumer, headers=headers)
    await sock.send({"type": "nope", "ref": "x"})
    assert await sock.recv() == {"type": "error", "ref": "x", "code": "bad_request", "message": message}
    await sock.close()


async def test_service_errors_are_translated_too(plenary, consumer, mediator):
    en = await connect(plenary, consumer, headers=[(b"accept-language", b"en")])
    fr = await connect(plenary, consumer, headers=[(b"accept-language", b"fr")])
    for sock in (en, fr):
        await sock.send({"type": "room.moderate", "moderated": True, "ref": "m"})
    assert (await en.recv())["message"] == "Your role may not do this."
    assert (await fr.recv())["message"] != "Your role may not do this."
    await en.close()
    await fr.close()


async def test_rooms_other_than_plenary_are_not_listed_to_members(mediation, plenary, consumer):
    rooms = await sync_to_async(lambda: list(Room.objects.filter(mediation=mediation)))()
    assert [r.kind for r in rooms] == ["plenary"]
