"""GET /api/v1/mediations, /mediations/<id> and POST /mediations/<id>/register (issue 3)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rooms import services
from rooms.models import Membership, MemberStatus, Phase, Role

pytestmark = pytest.mark.django_db

LIST_KEYS = {"id", "title", "company", "phase", "registration_closes_at", "closes_at", "members_count"}
DETAIL_KEYS = LIST_KEYS | {"description", "objective", "threshold", "plenary_room_id"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def register(client: Client, mediation_id):
    return client.post(f"/api/v1/mediations/{mediation_id}/register", data="{}", content_type="application/json")


def test_list_shows_open_mediations_only(client, make_mediation, make_member):
    dialogue = make_mediation(title="Dialogue", phase=Phase.DIALOGUE)
    registration = make_mediation(
        title="Registration",
        phase=Phase.REGISTRATION,
        registration_closes_at=timezone.now() + timedelta(hours=1),
        closes_at=timezone.now() + timedelta(days=2),
    )
    for phase in (Phase.DRAFT, Phase.CLOSED, Phase.SHREDDED):
        make_mediation(title=str(phase), phase=phase)
    make_member(dialogue, Role.CONSUMER)
    make_member(dialogue, Role.MEDIATOR)
    make_member(dialogue, Role.CONSUMER, status=MemberStatus.PENDING)

    response = client.get("/api/v1/mediations")
    assert response.status_code == 200
    items = response.json()
    assert [i["title"] for i in items] == ["Dialogue", "Registration"]
    assert all(set(i) >= LIST_KEYS for i in items)
    first, second = items
    assert first["id"] == str(dialogue.pk)
    assert first["members_count"] == 2  # admitted only
    assert first["registration_closes_at"] is None
    assert first["closes_at"] == dialogue.closes_at.isoformat()
    assert second["phase"] == "registration"
    assert second["registration_closes_at"] == registration.registration_closes_at.isoformat()
    assert second["members_count"] == 0


def test_detail_for_anyone_has_no_role(client, mediation, plenary):
    response = client.get(f"/api/v1/mediations/{mediation.pk}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= DETAIL_KEYS  # the protocol lets fields be added
    assert "my_role" not in body
    assert body["threshold"] == "0.75"
    assert body["plenary_room_id"] == str(plenary.pk)
    assert body["company"] == "Abonnix SA"


@pytest.mark.parametrize(("bp", "text"), [(7500, "0.75"), (6667, "0.6667"), (10_000, "1"), (5001, "0.5001")])
def test_threshold_is_an_exact_decimal_string(client, make_mediation, bp, text):
    mediation = make_mediation(threshold_bp=bp)
    assert client.get(f"/api/v1/mediations/{mediation.pk}").json()["threshold"] == text


@pytest.mark.parametrize("role", [Role.CONSUMER, Role.MEDIATOR, Role.COMPANY])
def test_detail_tells_a_member_their_role(mediation, make_member, role):
    member = make_member(mediation, role)
    body = logged_in(member.user).get(f"/api/v1/mediations/{mediation.pk}").json()
    assert body["my_role"] == role


def test_detail_of_unknown_or_hidden_mediation_is_404(client, make_mediation):
    draft = make_mediation(phase=Phase.DRAFT)
    for ident in (draft.pk, 999_999, "abc", "1e3", "-1"):
        response = client.get(f"/api/v1/mediations/{ident}")
        assert response.status_code == 404, ident
        assert response.json()["error"]["code"] == "not_found"


def test_register_admits_at_once(mediation, outsider):
    client = logged_in(outsider)
    response = register(client, mediation.pk)
    assert response.status_code == 201
    assert response.json()["status"] == "admitted"
    member = Membership.objects.get(user=outsider, mediation=mediation)
    assert (member.role, member.status) == (Role.CONSUMER, MemberStatus.ADMITTED)
    assert response.json()["member_id"] == str(member.pk)


def test_register_pending_when_the_mediator_admits(make_mediation, outsider):
    mediation = make_mediation(auto_admit=False)
    response = register(logged_in(outsider), mediation.pk)
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    assert Membership.objects.get(user=outsider).status == MemberStatus.PENDING


def test_register_twice_is_409(mediation, outsider, mediator):
    client = logged_in(outsider)
    assert register(client, mediation.pk).status_code == 201
    again = register(client, mediation.pk)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert register(logged_in(mediator.user), mediation.pk).status_code == 409
    assert Membership.objects.filter(mediation=mediation).count() == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"registration_closes_at": timezone.now() - timedelta(seconds=1)},
        {"closes_at": timezone.now() - timedelta(seconds=1)},
    ],
    ids=["registration-closed", "mediation-past-deadline"],
)
def test_register_after_registration_closes_is_410(make_mediation, outsider, fields):
    mediation = make_mediation(**fields)
    response = register(logged_in(outsider), mediation.pk)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "gone"
    assert not Membership.objects.filter(user=outsider).exists()


@pytest.mark.parametrize("phase", [Phase.DRAFT, Phase.CLOSED])
def test_register_to_a_mediation_not_listed_is_404(make_mediation, outsider, phase):
    mediation = make_mediation(phase=phase)
    response = register(logged_in(outsider), mediation.pk)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_register_unknown_is_404_and_anonymous_is_401(client, mediation, outsider):
    response = register(logged_in(outsider), 987_654)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    anonymous = register(client, mediation.pk)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"


def test_register_needs_csrf(mediation, outsider):
    client = Client(enforce_csrf_checks=True)
    client.force_login(outsider)
    response = register(client, mediation.pk)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert not Membership.objects.filter(user=outsider).exists()


def test_register_get_is_405(mediation, outsider):
    response = logged_in(outsider).get(f"/api/v1/mediations/{mediation.pk}/register")
    assert response.status_code == 405
    assert json.loads(response.content)["error"]["code"] == "method_not_allowed"


def test_plenary_is_created_with_the_mediation(mediation):
    rooms = list(mediation.rooms.all())
    assert [(r.kind, r.last_seq) for r in rooms] == [("plenary", 0)]
    assert services.plenary_room(mediation) == rooms[0]
