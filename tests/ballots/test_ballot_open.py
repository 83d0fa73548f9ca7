from datetime import timedelta

import pytest
from django.utils import timezone

from ballots import services
from ballots.models import Ballot, Elector, Tally
from crypto import signing
from rooms.errors import ActionError
from rooms.models import Event, MemberStatus, Role
from tests.ballots.conftest import cast, fresh, open_ballot, submit_offer


def refusal(call) -> str:
    with pytest.raises(ActionError) as refused:
        call()
    return refused.value.code


def test_the_electorate_is_the_admitted_consumers_at_opening(
    mediation, plenary, mediator, company, offer, consumers, pending, make_member
):
    admitted = consumers(3)
    make_member(mediation, Role.CONSUMER, status=MemberStatus.REFUSED)
    ballot = open_ballot(mediator, offer, seconds=600)
    assert ballot.eligible == 3 and ballot.threshold_bp == 7500
    assert set(Elector.objects.filter(ballot=ballot).values_list("membership_id", flat=True)) == {m.pk for m in admitted}
    assert not Elector.objects.filter(has_voted=True).exists()
    assert Tally.objects.filter(ballot=ballot).count() == 16
    expected = signing.sha256_hex("\n".join(sorted(str(m.pk) for m in admitted)).encode())
    assert ballot.electorate_hash == expected
    event = Event.objects.get(room=plenary, seq=ballot.opened_seq)
    assert event.type == "ballot.opened" and event.author_id == mediator.pk
    assert event.data == {
        "ballot": {
            "id": str(ballot.pk),
            "offer_id": str(offer.pk),
            "closes_at": ballot.closes_at.isoformat(),
            "eligible": 3,
            "threshold": "0.75",
        }
    }
    # Joining after the opening, or being admitted after it, gives no vote on it.
    late = make_member(mediation, Role.CONSUMER)
    pending.status = MemberStatus.ADMITTED
    pending.save()
    assert refusal(lambda: cast(late, ballot, "accept")) == "not_eligible"
    assert refusal(lambda: cast(pending, ballot, "accept")) == "not_eligible"
    assert fresh(ballot).eligible == 3


def test_the_threshold_is_copied_at_opening(mediation, mediator, offer, consumers):
    consumers(2)
    mediation.threshold_bp = 6000
    mediation.save()
    ballot = open_ballot(mediator, offer)
    mediation.threshold_bp = 9000
    mediation.save()
    assert fresh(ballot).threshold_bp == 6000 and fresh(ballot).threshold == "0.6"


def test_no_ballot_with_nobody_to_vote(mediator, offer, pending):
    assert refusal(lambda: open_ballot(mediator, offer)) == "bad_request"
    assert not Ballot.objects.exists() and not Elector.objects.exists() and not Tally.objects.exists()


def test_an_unknown_offer_is_not_found(mediator, plenary, consumers, make_mediation, make_member):
    consumers(1)
    other = make_mediation()
    from rooms.services import plenary_room

    foreign = submit_offer(make_member(other, Role.COMPANY), plenary_room(other))
    for offer_id in (foreign.pk, 999_999):
        assert refusal(
            lambda offer_id=offer_id: services.check_ballot_open(member_id=mediator.pk, room_id=plenary.pk, offer_id=offer_id)
        ) == "not_found"


def test_one_ballot_per_offer_and_one_open_at_a_time(mediator, company, plenary, offer, consumers):
    voters = consumers(2)
    ballot = open_ballot(mediator, offer)
    assert refusal(lambda: open_ballot(mediator, offer)) == "bad_request"
    second = submit_offer(company, plenary, title="Mieux")
    assert refusal(lambda: open_ballot(mediator, second)) == "bad_request"
    cast(voters[0], ballot, "refuse")  # 1 refusal of 2 with 75 %: rejected, sealed
    assert fresh(ballot).outcome == "rejected"
    assert refusal(lambda: open_ballot(mediator, offer)) == "bad_request"  # still one per offer
    assert open_ballot(mediator, second).eligible == 2


def test_the_deadline_is_in_the_future_and_not_after_the_mediation(mediation, mediator, offer, consumers):
    consumers(1)
    now = timezone.now()
    assert refusal(lambda: open_ballot(mediator, offer, closes_at=now - timedelta(seconds=1))) == "bad_request"
    late = mediation.closes_at + timedelta(microseconds=1)
    assert refusal(lambda: open_ballot(mediator, offer, closes_at=late)) == "bad_request"
    assert open_ballot(mediator, offer, closes_at=mediation.closes_at).closes_at == mediation.closes_at


@pytest.mark.parametrize("role", [Role.CONSUMER, Role.COMPANY])
def test_only_the_mediator_opens(role, mediation, plenary, offer, consumers, make_member):
    consumers(1)
    member = make_member(mediation, role)
    assert refusal(
        lambda: services.check_ballot_open(member_id=member.pk, room_id=plenary.pk, offer_id=offer.pk)
    ) == "forbidden"


def test_a_due_ballot_left_open_is_sealed_before_the_next_opens(mediator, company, plenary, offer, consumers):
    consumers(2)
    ballot = open_ballot(mediator, offer)
    Ballot.objects.filter(pk=ballot.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    second = submit_offer(company, plenary, title="Mieux")
    assert open_ballot(mediator, second).eligible == 2
    assert fresh(ballot).seal_reason == "deadline" and fresh(ballot).outcome == "rejected"
