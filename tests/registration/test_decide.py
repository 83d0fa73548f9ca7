"""The mediator's queue of registrations and their decisions, one by one or in bulk;
only admitted consumers enter the rooms (issue 10, item 1)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from rooms import frames, services
from rooms.models import Membership, MemberStatus, Notice, Registration, Role
from tests.conftest import connect, refused
from tests.registration.conftest import ANSWERS, PDF, logged_in, upload


def register(user, mediation) -> Membership:
    client = logged_in(user)
    response = client.post(
        f"/api/v1/mediations/{mediation.pk}/register",
        data={"answers": json.dumps(ANSWERS), "documents": [upload("contrat.pdf", PDF)]},
    )
    assert response.status_code == 201, response.content
    return Membership.objects.select_related("user").get(pk=response.json()["member_id"])


def decide(user, mediation, decisions):
    # A lone surrogate goes over the wire as JSON lets it: escaped.
    return logged_in(user).post(
        f"/api/v1/mediations/{mediation.pk}/registrations/decide",
        data=json.dumps({"decisions": decisions}, ensure_ascii=True),
        content_type="application/json",
    )


def queue(user, mediation, query=""):
    return logged_in(user).get(f"/api/v1/mediations/{mediation.pk}/registrations{query}")


@pytest.fixture
def its_mediator(asking, make_member):
    return make_member(asking, Role.MEDIATOR)


@pytest.fixture
def claimants(asking, make_user):
    return [register(make_user(), asking) for _ in range(5)]


@pytest.mark.django_db
def test_the_queue_is_paged_and_shows_answers_and_documents(asking, its_mediator, claimants):
    first = queue(its_mediator.user, asking, "?limit=2")
    assert first.status_code == 200
    page = first.json()
    assert [r["member_id"] for r in page["registrations"]] == [str(m.pk) for m in claimants[:2]]
    assert page["next"] == str(claimants[1].pk)
    row = page["registrations"][0]
    assert row["status"] == "pending" and row["answers"] == ANSWERS
    assert row["display_name"] == claimants[0].display_name
    assert [d["name"] for d in row["documents"]] == ["contrat.pdf"]
    assert logged_in(its_mediator.user).get(row["documents"][0]["url"]).content == PDF
    rest = queue(its_mediator.user, asking, f"?limit=2&after={page['next']}").json()
    last = queue(its_mediator.user, asking, f"?limit=2&after={rest['next']}").json()
    assert [r["member_id"] for r in rest["registrations"] + last["registrations"]] == [str(m.pk) for m in claimants[2:]]
    assert last["next"] is None
    assert queue(its_mediator.user, asking, "?status=admitted").json() == {"registrations": [], "next": None}
    assert queue(its_mediator.user, asking, "?status=muted").status_code == 400


@pytest.mark.django_db
def test_only_the_mediator_sees_the_queue_and_decides(asking, its_mediator, claimants, make_member):
    company = make_member(asking, Role.COMPANY)
    for someone in (company.user, claimants[0].user):
        assert queue(someone, asking).status_code == 403
        assert decide(someone, asking, [{"member_id": str(claimants[0].pk), "decision": "admit"}]).status_code == 403
    assert queue(its_mediator.user, asking).status_code == 200
    assert logged_in(None).get(f"/api/v1/mediations/{asking.pk}/registrations").status_code == 401


@pytest.mark.django_db
def test_bulk_decisions_and_the_consumer_sees_status_and_reason(asking, its_mediator, claimants):
    a, b, c, *_ = claimants
    response = decide(
        its_mediator.user,
        asking,
        [
            {"member_id": str(a.pk), "decision": "admit"},
            {"member_id": b.pk, "decision": "admit", "reason": "Contrat vérifié."},
            {"member_id": str(c.pk), "decision": "refuse", "reason": "Votre contrat n'est pas concerné."},
        ],
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "decisions": [
            {"member_id": str(a.pk), "status": "admitted"},
            {"member_id": str(b.pk), "status": "admitted"},
            {"member_id": str(c.pk), "status": "refused"},
        ]
    }
    seen = logged_in(c.user).get(f"/api/v1/mediations/{asking.pk}/registration").json()
    assert (seen["status"], seen["reason"]) == ("refused", "Votre contrat n'est pas concerné.")
    assert seen["decided_at"] is not None
    assert logged_in(c.user).get(f"/api/v1/mediations/{asking.pk}").json()["my_status"] == "refused"
    assert logged_in(b.user).get(f"/api/v1/mediations/{asking.pk}/registration").json()["reason"] == "Contrat vérifié."
    assert Registration.objects.get(pk=a.pk).decided_by_id == its_mediator.pk
    assert set(Notice.objects.values_list("membership_id", "kind", "subject_id", "state")) == {
        (a.pk, "admitted", 0, "pending"),
        (b.pk, "admitted", 0, "pending"),
        (c.pk, "refused", 0, "pending"),
    }
    assert [r["member_id"] for r in queue(its_mediator.user, asking).json()["registrations"]] == [str(m.pk) for m in claimants[3:]]
    assert [r["member_id"] for r in queue(its_mediator.user, asking, "?status=refused").json()["registrations"]] == [str(c.pk)]


@pytest.mark.django_db
def test_a_refusal_may_be_turned_into_an_admission_not_the_reverse(asking, its_mediator, claimants):
    a = claimants[0]
    assert decide(its_mediator.user, asking, [{"member_id": str(a.pk), "decision": "refuse", "reason": "Pièce manquante."}]).status_code == 200
    again = decide(its_mediator.user, asking, [{"member_id": str(a.pk), "decision": "refuse", "reason": "Encore."}])
    assert (again.status_code, again.json()["error"]["code"], again.json()["error"]["member_id"]) == (409, "conflict", str(a.pk))
    assert decide(its_mediator.user, asking, [{"member_id": str(a.pk), "decision": "admit", "reason": " "}]).status_code == 200
    seen = logged_in(a.user).get(f"/api/v1/mediations/{asking.pk}/registration").json()
    assert (seen["status"], seen["reason"]) == ("admitted", None)
    assert decide(its_mediator.user, asking, [{"member_id": str(a.pk), "decision": "refuse", "reason": "Non."}]).status_code == 409
    assert sorted(Notice.objects.filter(membership=a).values_list("kind", flat=True)) == ["admitted", "refused"]


@pytest.mark.django_db
def test_decisions_are_all_or_none(asking, its_mediator, claimants, make_member, mediation):
    a, b = claimants[:2]
    assert decide(its_mediator.user, asking, [{"member_id": str(b.pk), "decision": "admit"}]).status_code == 200
    elsewhere = make_member(mediation, Role.CONSUMER, status=MemberStatus.PENDING)
    cases = [
        ([{"member_id": str(a.pk), "decision": "admit"}, {"member_id": str(b.pk), "decision": "refuse", "reason": "x"}], 409, "conflict"),
        ([{"member_id": str(a.pk), "decision": "admit"}, {"member_id": str(elsewhere.pk), "decision": "admit"}], 404, "not_found"),
        ([{"member_id": str(a.pk), "decision": "admit"}, {"member_id": str(its_mediator.pk), "decision": "admit"}], 404, "not_found"),
        ([{"member_id": str(a.pk), "decision": "refuse"}], 400, "bad_request"),
        ([{"member_id": str(a.pk), "decision": "refuse", "reason": "   "}], 400, "bad_request"),
        ([{"member_id": str(a.pk), "decision": "maybe"}], 400, "bad_request"),
        ([{"member_id": str(a.pk), "decision": "admit"}, {"member_id": str(a.pk), "decision": "admit"}], 409, "conflict"),
        ([{"member_id": str(a.pk), "decision": "refuse", "reason": "x" * 2001}], 400, "bad_request"),
        ([{"member_id": str(a.pk), "decision": "refuse", "reason": "\ud800"}], 400, "bad_request"),
        ([{"member_id": str(a.pk), "decision": "refuse", "reason": "a\u0000b"}], 400, "bad_request"),
        ([{"member_id": str(a.pk), "decision": "refuse", "reason": 3}], 400, "bad_request"),
        ([], 400, "bad_request"),
        ([{"member_id": str(a.pk), "decision": "admit"}] * 1001, 400, "bad_request"),
        ("admit", 400, "bad_request"),
    ]
    for decisions, status, code in cases:
        response = decide(its_mediator.user, asking, decisions)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), decisions
    assert Membership.objects.get(pk=a.pk).status == MemberStatus.PENDING
    assert not Notice.objects.filter(membership=a).exists()


@pytest.mark.django_db
def test_no_decision_once_the_mediation_is_closed(asking, its_mediator, claimants):
    services.mediation_close(mediation=asking, reason="deadline")
    response = decide(its_mediator.user, asking, [{"member_id": str(claimants[0].pk), "decision": "admit"}])
    assert (response.status_code, response.json()["error"]["code"]) == (409, "room_closed")
    assert Membership.objects.get(pk=claimants[0].pk).status == MemberStatus.PENDING


@pytest.mark.django_db(transaction=True)
async def test_a_refused_consumer_is_kept_out_of_every_room(asking, its_mediator, make_user):
    refused_one = await sync_to_async(register)(await sync_to_async(make_user)(), asking)
    admitted_one = await sync_to_async(register)(await sync_to_async(make_user)(), asking)
    plenary = await sync_to_async(services.plenary_room)(asking)
    # Pending: not yet in.
    assert await refused(plenary, refused_one) == frames.CLOSE_FORBIDDEN
    response = await sync_to_async(decide)(
        its_mediator.user,
        asking,
        [
            {"member_id": str(refused_one.pk), "decision": "refuse", "reason": "Hors périmètre."},
            {"member_id": str(admitted_one.pk), "decision": "admit"},
        ],
    )
    assert response.status_code == 200
    assert await refused(plenary, refused_one) == frames.CLOSE_FORBIDDEN
    events = await sync_to_async(lambda: logged_in(refused_one.user).get(f"/api/v1/rooms/{plenary.pk}/events"))()
    assert (events.status_code, events.json()["error"]["code"]) == (403, "forbidden")
    rooms = await sync_to_async(lambda: logged_in(refused_one.user).get(f"/api/v1/mediations/{asking.pk}/rooms"))()
    assert rooms.status_code == 403
    # The one admitted enters, and reads the log.
    sock = await connect(plenary, admitted_one)
    assert sock.welcome["me"]["member_id"] == str(admitted_one.pk)
    await sock.close()
    events = await sync_to_async(lambda: logged_in(admitted_one.user).get(f"/api/v1/rooms/{plenary.pk}/events"))()
    assert events.status_code == 200
