"""GET /api/v1/rooms/<id>/events (issue 4, item 3): the log after ``after_seq``, oldest
first, paged; ``last_seq`` is the room's newest; each event is the frame the socket sent;
a redacted message has no body there either; 403 for anyone but a member."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.test import Client
from django.utils import timezone

from rooms import frames, log, services
from tests.conftest import connect


def as_user(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def fill(room, author, n: int) -> None:
    with transaction.atomic():
        for i in range(n):
            log.append(room_id=room.pk, type=frames.CHAT_MESSAGE, data={"author": author.public()}, secret={"body": f"m{i + 1}"}, author_id=author.pk)


def events(user, room, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return as_user(user).get(f"/api/v1/rooms/{room.pk}/events" + (f"?{query}" if query else ""))


@pytest.mark.django_db
def test_paging_after_seq_and_limit(plenary, consumer):
    fill(plenary, consumer, 150)
    first = events(consumer.user, plenary)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"events", "last_seq"}
    assert [e["seq"] for e in body["events"]] == list(range(1, 101))  # default limit 100
    assert body["last_seq"] == 150  # the room's newest, not the page's
    page = events(consumer.user, plenary, after_seq=100, limit=30).json()
    assert [e["seq"] for e in page["events"]] == list(range(101, 131))
    assert page["last_seq"] == 150
    assert [e["body"] for e in page["events"][:2]] == ["m101", "m102"]
    tail = events(consumer.user, plenary, after_seq=140).json()
    assert [e["seq"] for e in tail["events"]] == list(range(141, 151))
    assert events(consumer.user, plenary, after_seq=150).json() == {"events": [], "last_seq": 150}
    assert events(consumer.user, plenary, after_seq=10_000).json() == {"events": [], "last_seq": 150}


@pytest.mark.django_db
def test_limit_max_is_1000(plenary, consumer):
    fill(plenary, consumer, 1001)
    body = events(consumer.user, plenary, limit=1000).json()
    assert len(body["events"]) == 1000 and body["last_seq"] == 1001
    assert [e["seq"] for e in events(consumer.user, plenary, after_seq=1000, limit=1000).json()["events"]] == [1001]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [{"limit": 1001}, {"limit": 0}, {"limit": -1}, {"limit": "x"}, {"after_seq": -1}, {"after_seq": "one"}, {"after_seq": "1.5"}],
)
def test_bad_paging_is_bad_request(plenary, consumer, params):
    response = events(consumer.user, plenary, **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.django_db
def test_empty_room(plenary, consumer):
    assert events(consumer.user, plenary).json() == {"events": [], "last_seq": 0}


@pytest.mark.django_db
def test_only_members_read(plenary, consumer, mediator, company, pending, outsider, make_mediation, make_member):
    fill(plenary, consumer, 1)
    stranger = make_member(make_mediation(title="Autre"), "mediator")
    for user in (consumer.user, mediator.user, company.user):
        assert events(user, plenary).status_code == 200
    for user in (pending.user, outsider, stranger.user):
        response = events(user, plenary)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
        assert "m1" not in response.content.decode()
    assert events(None, plenary).status_code == 401
    missing = as_user(consumer.user).get("/api/v1/rooms/987654/events")
    assert missing.status_code in (403, 404)
    assert as_user(consumer.user).get("/api/v1/rooms/abc/events").status_code == 404


@pytest.mark.django_db
def test_events_of_a_closed_mediation_stay_readable(plenary, mediation, consumer):
    fill(plenary, consumer, 2)
    services.mediation_close(mediation=mediation, reason="deadline")
    body = events(consumer.user, plenary).json()
    assert [e["type"] for e in body["events"]] == ["chat.message", "chat.message", "mediation.phase", "room.closed"]
    assert body["events"][-1]["reason"] == "deadline"


@pytest.mark.django_db(transaction=True)
async def test_each_event_is_the_frame_the_socket_sent(plenary, mediator, consumer, company):
    watcher = await connect(plenary, company)
    med = await connect(plenary, mediator)
    alice = await connect(plenary, consumer)
    until = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    await alice.send({"type": "chat.send", "body": "Bonjour"})
    await alice.recv_until("ack")
    for frame in (
        {"type": "member.mute", "member_id": str(consumer.pk), "until": until.isoformat()},
        {"type": "member.unmute", "member_id": str(consumer.pk)},
        {"type": "room.moderate", "moderated": True},
        {"type": "room.moderate", "moderated": False},
        {"type": "chat.send", "body": "Réponse du médiateur"},
        {"type": "message.redact", "seq": 1},
    ):
        await med.send(frame)
        await med.recv_until("ack")
    live = [await watcher.recv() for _ in range(7)]
    assert [f["type"] for f in live] == [
        "chat.message",
        "member.muted",
        "member.unmuted",
        "room.moderated",
        "room.moderated",
        "chat.message",
        "message.redacted",
    ]
    assert live[1]["until"] == until.isoformat()
    response = await sync_to_async(lambda: events(consumer.user, plenary))()
    stored = response.json()["events"]
    # The redacted message has lost its body, here as everywhere; everything else is
    # exactly what was sent live.
    assert stored[0] == {**live[0], "body": None, "redacted": True}
    assert stored[1:] == live[1:]
    assert response.json()["last_seq"] == 7
    for sock in (watcher, med, alice):
        await sock.close()
