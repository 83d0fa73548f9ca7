"""Phases registration → dialogue → closed, by the worker at their dates or by the
mediator; each change logged in the plenary room and visible in the API (issue 10, item 2)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone

from rooms import services
from rooms.models import Event, Mediation, Phase, Role
from tests.conftest import connect
from tests.registration.conftest import logged_in


def advance(user, mediation, phase):
    return logged_in(user).post(
        f"/api/v1/mediations/{mediation.pk}/advance", data=json.dumps({"phase": phase}), content_type="application/json"
    )


def phase_events(mediation) -> list[dict]:
    room = services.plenary_room(mediation)
    return [e for e in services.events_page(room=room, after_seq=0, limit=100)[0] if e["type"] == "mediation.phase"]


@pytest.fixture
def registering(make_mediation):
    return make_mediation(
        phase=Phase.REGISTRATION,
        registration_closes_at=timezone.now() + timedelta(days=1),
        closes_at=timezone.now() + timedelta(days=10),
    )


@pytest.mark.django_db
def test_the_mediator_moves_registration_to_dialogue_once(registering, make_member, client):
    mediator = make_member(registering, Role.MEDIATOR)
    consumer = make_member(registering, Role.CONSUMER)
    assert client.get(f"/api/v1/mediations/{registering.pk}").json()["phase"] == "registration"
    response = advance(mediator.user, registering, "dialogue")
    assert response.status_code == 200, response.content
    assert response.json() == {"phase": "dialogue", "seq": 1}
    [event] = phase_events(registering)
    assert event == {"type": "mediation.phase", "seq": 1, "at": event["at"], "phase": "dialogue"}
    assert client.get(f"/api/v1/mediations/{registering.pk}").json()["phase"] == "dialogue"
    events = logged_in(consumer.user).get(f"/api/v1/rooms/{services.plenary_room(registering).pk}/events").json()
    assert events["events"] == [event]
    # Twice, backwards or over a phase: 409, nothing logged.
    for phase in ("dialogue", "registration"):
        again = advance(mediator.user, registering, phase)
        assert (again.status_code, again.json()["error"]["code"]) == (409, "conflict")
    assert len(phase_events(registering)) == 1


@pytest.mark.django_db
def test_only_the_mediator_advances(registering, make_member):
    mediator = make_member(registering, Role.MEDIATOR)
    for role in (Role.CONSUMER, Role.COMPANY):
        assert advance(make_member(registering, role).user, registering, "dialogue").status_code == 403
    for bad in ("shredded", "draft", None, ["dialogue"], {"x": 1}):
        response = advance(mediator.user, registering, bad)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_request"), bad
    skipped = advance(mediator.user, registering, "closed")
    assert skipped.status_code == 409
    assert Mediation.objects.get(pk=registering.pk).phase == Phase.REGISTRATION


@pytest.mark.django_db
def test_a_draft_opens_for_registration(make_mediation, make_member):
    draft = make_mediation(phase=Phase.DRAFT)
    mediator = make_member(draft, Role.MEDIATOR)
    assert advance(mediator.user, draft, "registration").json()["phase"] == "registration"
    assert [e["phase"] for e in phase_events(draft)] == ["registration"]


@pytest.mark.django_db
def test_the_mediator_closes_the_dialogue(mediation, plenary, mediator, consumer):
    caucus, *_ = services.caucus_open(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    response = advance(mediator.user, mediation, "closed")
    assert response.status_code == 200
    change = Event.objects.get(room=plenary, type="mediation.phase")
    closing = Event.objects.get(room=plenary, type="room.closed")
    assert response.json() == {"phase": "closed", "seq": change.seq}
    assert (change.data, change.seq + 1) == ({"phase": "closed"}, closing.seq)
    assert closing.data == {"reason": "mediator"}
    assert Event.objects.get(room=caucus, type="room.closed").data == {"reason": "mediator"}
    stored = Mediation.objects.get(pk=mediation.pk)
    assert (stored.phase, stored.outcome) == ("closed", "no_agreement")
    assert advance(mediator.user, mediation, "closed").status_code == 409


@pytest.mark.django_db(transaction=True)
async def test_the_worker_ends_registration_at_its_date_and_members_see_it_live(registering, make_member, settings):
    settings.PALABRE_INPROCESS_DEADLINES = False
    consumer = await sync_to_async(make_member)(registering, Role.CONSUMER)
    plenary = await sync_to_async(services.plenary_room)(registering)
    sock = await connect(plenary, consumer)
    assert sock.welcome["room"]["phase"] == "registration"
    await sync_to_async(Mediation.objects.filter(pk=registering.pk).update)(
        registration_closes_at=timezone.now() - timedelta(seconds=1)
    )
    out = io.StringIO()
    await sync_to_async(call_command)("run_deadlines", "--once", stdout=out)
    assert "mediations_advance_due=1" in out.getvalue()
    frame = await sock.recv_until("mediation.phase")
    assert frame == {"type": "mediation.phase", "seq": 1, "at": frame["at"], "phase": "dialogue"}
    again = io.StringIO()
    await sync_to_async(call_command)("run_deadlines", "--once", stdout=again)
    assert "mediations_advance_due=0" in again.getvalue()
    assert await sock.nothing(0.1)
    await sock.close()
    stored = await sync_to_async(Mediation.objects.get)(pk=registering.pk)
    assert stored.phase == Phase.DIALOGUE
    late = await connect(plenary, consumer)
    assert late.welcome["room"]["phase"] == "dialogue"
    await late.close()


@pytest.mark.django_db
def test_a_mediation_without_a_registration_date_stays_in_registration(make_mediation):
    open_ended = make_mediation(phase=Phase.REGISTRATION, registration_closes_at=None)
    assert services.mediations_advance_due(timezone.now() + timedelta(days=365)) == 0
    assert Mediation.objects.get(pk=open_ended.pk).phase == Phase.REGISTRATION
