from datetime import timedelta

import pytest
from django.utils import timezone

from ballots import services
from ballots.models import Ballot, Vote
from crypto import merkle, signing
from rooms import deadlines
from rooms.errors import ActionError
from rooms.models import Event, Mediation, Role
from rooms.services import room_create
from tests.ballots.conftest import cast, fresh, open_ballot

DOCUMENT_FIELDS = {
    "version", "mediation_id", "ballot_id", "offer_id", "offer_hash", "eligible", "electorate_hash",
    "accept", "refuse", "threshold", "outcome", "opened_at", "sealed_at", "merkle_root",
}


def test_the_seal_document_is_exactly_the_protocols_and_signed(mediation, plenary, mediator, offer, consumers):
    voters = consumers(5)  # 75 % of 5: 4
    ballot = open_ballot(mediator, offer)
    receipts = {cast(v, ballot, c): c for v, c in zip(voters[:3], ["accept", "refuse", "accept"], strict=True)}
    frame = services.ballot_close(ballot=fresh(ballot))
    sealed = fresh(ballot)
    document = sealed.document
    assert set(document) == DOCUMENT_FIELDS
    leaves = [merkle.leaf_hash(r, str(ballot.pk), c) for r, c in receipts.items()]
    assert document == {
        "version": 1,
        "mediation_id": str(mediation.pk),
        "ballot_id": str(ballot.pk),
        "offer_id": str(offer.pk),
        "offer_hash": offer.offer_hash,
        "eligible": 5,
        "electorate_hash": signing.sha256_hex("\n".join(sorted(str(v.pk) for v in voters)).encode()),
        "accept": 2,
        "refuse": 1,
        "threshold": "0.75",
        "outcome": "rejected",
        "opened_at": sealed.opened_at.isoformat(),
        "sealed_at": sealed.sealed_at.isoformat(),
        "merkle_root": merkle.merkle_root(leaves),
    }
    assert signing.verify(document, sealed.signature, sealed.key_id)
    assert sealed.key_id == signing.public_keys()[0]["key_id"]
    assert sealed.seal_reason == "closed"
    event = Event.objects.get(room=plenary, seq=sealed.sealed_seq)
    assert event.type == "ballot.sealed" and event.author_id is None
    assert frame == {
        "type": "ballot.sealed",
        "seq": sealed.sealed_seq,
        "at": frame["at"],
        "ballot_id": str(ballot.pk),
        "outcome": "rejected",
        "accept": 2,
        "refuse": 1,
        "eligible": 5,
        "threshold": "0.75",
        "merkle_root": document["merkle_root"],
        "signature": sealed.signature,
        "key_id": sealed.key_id,
    }
    # Rejected: the mediation goes on.
    assert Mediation.objects.get(pk=mediation.pk).phase == "dialogue"


def test_closed_by_the_mediator_accepted_iff_the_threshold_is_met(mediator, offer, company, plenary, consumers):
    voters = consumers(10)
    ballot = open_ballot(mediator, offer)
    for v in voters[:7]:
        cast(v, ballot, "accept")
    services.ballot_close(ballot=fresh(ballot))
    assert (fresh(ballot).outcome, fresh(ballot).accept) == ("rejected", 7)


def test_no_vote_at_all_seals_rejected_with_the_empty_root(mediator, offer, consumers):
    consumers(3)
    ballot = open_ballot(mediator, offer)
    services.ballot_close(ballot=fresh(ballot))
    sealed = fresh(ballot)
    assert (sealed.accept, sealed.refuse, sealed.outcome) == (0, 0, "rejected")
    assert sealed.merkle_root == merkle.EMPTY_ROOT


def test_exactly_one_seal_however_many_sealers(mediator, offer, plenary, consumers):
    voters = consumers(4)
    ballot = open_ballot(mediator, offer)
    cast(voters[0], ballot, "accept")
    assert services.ballot_seal(ballot=ballot, reason="closed") is not None
    first = fresh(ballot)
    for reason in ("closed", "deadline", "certain"):
        assert services.ballot_seal(ballot=ballot, reason=reason) is None
    assert fresh(ballot).sealed_at == first.sealed_at and fresh(ballot).document == first.document
    assert Event.objects.filter(room=plenary, type="ballot.sealed").count() == 1
    with pytest.raises(ActionError) as refused:
        services.ballot_close(ballot=ballot)
    assert refused.value.code == "ballot_closed"
    with pytest.raises(ActionError) as refused:
        services.check_ballot_close(member_id=mediator.pk, room_id=plenary.pk, ballot_id=ballot.pk)
    assert refused.value.code == "ballot_closed"


@pytest.mark.parametrize("role", [Role.CONSUMER, Role.COMPANY])
def test_only_the_mediator_closes(role, mediation, plenary, mediator, offer, consumers, make_member):
    consumers(2)
    ballot = open_ballot(mediator, offer)
    member = make_member(mediation, role)
    with pytest.raises(ActionError) as refused:
        services.check_ballot_close(member_id=member.pk, room_id=plenary.pk, ballot_id=ballot.pk)
    assert refused.value.code == "forbidden"
    assert fresh(ballot).sealed_at is None


def test_ballots_are_closed_in_the_plenary(mediation, mediator, offer, consumers):
    consumer, *_ = consumers(2)
    ballot = open_ballot(mediator, offer)
    caucus = room_create(mediation=mediation, kind="caucus", title="Caucus", caucus_member=consumer)
    with pytest.raises(ActionError) as refused:
        services.check_ballot_close(member_id=mediator.pk, room_id=caucus.pk, ballot_id=ballot.pk)
    assert refused.value.code == "bad_request"


def test_the_worker_seals_at_the_deadline(mediator, offer, consumers):
    voters = consumers(4)
    ballot = open_ballot(mediator, offer, seconds=60)
    cast(voters[0], ballot, "accept")
    assert deadlines.run_once(ballot.closes_at - timedelta(seconds=1))["ballots_seal_due"] == 0
    assert fresh(ballot).sealed_at is None
    done = deadlines.run_once(ballot.closes_at)
    assert done["ballots_seal_due"] == 1
    assert (fresh(ballot).seal_reason, fresh(ballot).outcome) == ("deadline", "rejected")
    assert deadlines.run_once(ballot.closes_at)["ballots_seal_due"] == 0


def test_the_worker_seals_a_certain_outcome_a_dead_process_left(monkeypatch, mediator, offer, consumers):
    voters = consumers(4)
    ballot = open_ballot(mediator, offer)
    monkeypatch.setattr(services, "seal_if_certain", lambda ballot: None)  # the process dies here
    for v in voters[:3]:
        cast(v, ballot, "accept")
    assert fresh(ballot).sealed_at is None
    monkeypatch.undo()
    assert services.ballots_seal_due() == 1
    assert (fresh(ballot).seal_reason, fresh(ballot).outcome, fresh(ballot).accept) == ("certain", "accepted", 3)


def test_an_accepted_offer_is_the_mediations_agreement(mediation, plenary, mediator, offer, consumers):
    caucus = room_create(mediation=mediation, kind="caucus", title="Caucus", caucus_member=mediator)
    voters = consumers(4)
    ballot = open_ballot(mediator, offer)
    for v in voters[:3]:
        cast(v, ballot, "accept")
    sealed = fresh(ballot)
    assert sealed.outcome == "accepted"
    mediation.refresh_from_db()
    assert (mediation.outcome, mediation.phase) == ("agreement", "closed")
    assert services_agreement(mediation) == sealed
    events = list(Event.objects.filter(room=plenary, seq__gt=sealed.sealed_seq).order_by("seq"))
    assert [e.type for e in events] == ["agreement.recorded", "mediation.phase", "room.closed"]
    assert events[0].data == {
        "offer_id": str(offer.pk),
        "ballot_id": str(ballot.pk),
        "merkle_root": sealed.merkle_root,
        "signature": sealed.signature,
        "key_id": sealed.key_id,
    }
    assert events[1].data == {"phase": "closed"}
    assert events[2].data == {"reason": "agreement"}
    assert Event.objects.get(room=caucus).data == {"reason": "agreement"}


def services_agreement(mediation):
    from ballots import selectors

    return selectors.agreement_of(mediation)


def test_the_worker_rewrites_sealed_votes_in_board_order(mediator, offer, crowd):
    voters = crowd(30)
    ballot = open_ballot(mediator, offer)
    for i, v in enumerate(voters[:20]):  # 23 of 30 carry it: 7 refusals leave it open
        cast(v, ballot, "refuse" if i % 3 == 0 else "accept")
    services.ballot_close(ballot=fresh(ballot))
    assert fresh(ballot).scrubbed_at is None  # not inside the seal: the worker does it
    assert deadlines.run_once()["ballots_scrub_sealed"] == 1
    assert fresh(ballot).scrubbed_at is not None
    assert services.ballot_scrub(ballot_id=ballot.pk) is False  # once
    from django.db import connection

    with connection.cursor() as cursor:
        physical = "rowid" if connection.vendor == "sqlite" else "ctid"
        cursor.execute(f"SELECT commitment FROM ballots_vote WHERE ballot_id = %s ORDER BY {physical}", [ballot.pk])
        stored = [row[0] for row in cursor.fetchall()]
    assert stored == sorted(stored) and len(stored) == 20
    assert Vote.objects.filter(ballot=ballot).count() == fresh(ballot).accept + fresh(ballot).refuse


def test_a_late_action_seals_a_ballot_past_its_deadline(mediator, plenary, offer, consumers):
    voters = consumers(4)
    ballot = open_ballot(mediator, offer)
    Ballot.objects.filter(pk=ballot.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ActionError) as refused:
        cast(voters[0], ballot, "accept")
    assert refused.value.code == "ballot_closed"
    assert fresh(ballot).seal_reason == "deadline"
