"""GET /api/v1/mediations/<id>/members: the mediator's paged, searchable member list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from rooms.models import Membership, MemberStatus, Role

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(mediation, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/mediations/{mediation.pk}/members" + (f"?{query}" if query else "")


def named(mediation, username, first, last="", role=Role.CONSUMER, status=MemberStatus.ADMITTED) -> Membership:
    user = get_user_model().objects.create_user(username=username, password="x", first_name=first, last_name=last)
    return Membership.objects.create(user=user, mediation=mediation, role=role, status=status)


def test_members_exact_shape(mediation, mediator, company, consumer, pending):
    response = as_user(mediator.user).get(url(mediation))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"members", "next"}
    assert body["next"] is None
    assert body["members"] == [
        {"member_id": str(m.pk), "display_name": m.display_name, "role": m.role, "status": m.status, "muted": False, "muted_until": None}
        for m in (mediator, company, consumer, pending)
    ]


def test_only_the_mediator_may_list(mediation, mediator, company, consumer, pending, outsider, make_mediation, make_member):
    other_mediator = make_member(make_mediation(title="Autre"), Role.MEDIATOR)
    for user in (company.user, consumer.user, pending.user, outsider, other_mediator.user):
        response = as_user(user).get(url(mediation))
        assert response.status_code == 403, user
        assert response.json()["error"]["code"] == "forbidden"
    assert Client().get(url(mediation)).status_code == 401
    response = as_user(mediator.user).get("/api/v1/mediations/424242/members")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_a_pending_mediator_may_not_list(mediation, make_member):
    pending_mediator = make_member(mediation, Role.MEDIATOR, status=MemberStatus.PENDING)
    assert as_user(pending_mediator.user).get(url(mediation)).status_code == 403


def test_q_is_a_case_insensitive_substring_of_name_or_username(mediation, mediator):
    claire = named(mediation, "cdupont", "Claire", "Dupont")
    jean = named(mediation, "jm-1984", "Jean", "Martin")
    named(mediation, "zed", "Zoé", "Zola")
    client = as_user(mediator.user)

    def found(q):
        return [m["member_id"] for m in client.get(url(mediation, q=q)).json()["members"]]

    assert found("claire") == [str(claire.pk)]
    assert found("DUPONT") == [str(claire.pk)]
    assert found("ire Dup") == [str(claire.pk)]  # across first and last name
    assert found("1984") == [str(jean.pk)]  # username
    assert found("mart") == [str(jean.pk)]
    assert found("nobody") == []


def test_status_filter(mediation, mediator, consumer, pending):
    client = as_user(mediator.user)
    admitted = client.get(url(mediation, status="admitted")).json()["members"]
    assert [m["member_id"] for m in admitted] == [str(mediator.pk), str(consumer.pk)]
    waiting = client.get(url(mediation, status="pending")).json()["members"]
    assert [m["member_id"] for m in waiting] == [str(pending.pk)]
    bad = client.get(url(mediation, status="refused"))
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_request")


def test_paging_with_after_and_next(mediation, mediator, consumers):
    people = [mediator, *consumers(24)]
    client = as_user(mediator.user)
    seen, after, pages = [], 0, 0
    while True:
        body = client.get(url(mediation, limit=10, after=after)).json()
        pages += 1
        seen += [m["member_id"] for m in body["members"]]
        assert len(body["members"]) <= 10
        if body["next"] is None:
            break
        assert body["next"] == body["members"][-1]["member_id"]
        after = body["next"]
    assert pages == 3
    assert seen == [str(m.pk) for m in people]


def test_next_is_null_on_an_exactly_full_last_page(mediation, mediator, consumers):
    consumers(9)
    body = as_user(mediator.user).get(url(mediation, limit=10)).json()
    assert len(body["members"]) == 10 and body["next"] is None


def test_limit_default_and_bounds(mediation, mediator, consumers):
    consumers(100)
    client = as_user(mediator.user)
    body = client.get(url(mediation)).json()
    assert len(body["members"]) == 100 and body["next"] == body["members"][-1]["member_id"]
    assert len(client.get(url(mediation, limit=1000)).json()["members"]) == 101
    for bad in ("0", "1001", "-5", "ten", "1.5"):
        response = client.get(url(mediation, limit=bad))
        assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_request"), bad
    for bad in ("x", "-1"):
        response = client.get(url(mediation, after=bad))
        assert response.status_code == 400, bad


def test_muted_and_muted_until(mediation, mediator, make_member):
    forever = make_member(mediation)
    later = make_member(mediation)
    expired = make_member(mediation)
    until = timezone.now() + timedelta(hours=1)
    Membership.objects.filter(pk=forever.pk).update(muted=True, muted_until=None)
    Membership.objects.filter(pk=later.pk).update(muted=True, muted_until=until)
    Membership.objects.filter(pk=expired.pk).update(muted=True, muted_until=timezone.now() - timedelta(seconds=1))
    rows = {m["member_id"]: m for m in as_user(mediator.user).get(url(mediation)).json()["members"]}
    assert (rows[str(forever.pk)]["muted"], rows[str(forever.pk)]["muted_until"]) == (True, None)
    assert (rows[str(later.pk)]["muted"], rows[str(later.pk)]["muted_until"]) == (True, until.isoformat())
    assert (rows[str(expired.pk)]["muted"], rows[str(expired.pk)]["muted_until"]) == (False, None)
