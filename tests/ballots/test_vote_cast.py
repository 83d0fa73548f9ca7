from datetime import timedelta

import pytest
from django.utils import timezone

from ballots import services
from ballots.models import Ballot, Elector, Tally, Vote
from crypto import merkle
from rooms.errors import ActionError
from rooms.models import Role
from tests.ballots.conftest import cast, fresh, open_ballot


def refusal(call) -> str:
    with pytest.raises(ActionError) as refused:
        call()
    return refused.value.code


def counts(ballot):
    return services.running_counts(ballot.pk)


def test_a_vote_is_stored_as_a_commitment_and_the_receipt_goes_to_the_voter(mediator, offer, consumers):
    alice, *_ = consumers(4)
    ballot = open_ballot(mediator, offer)
    receipt = cast(alice, ballot, "accept")
    assert len(receipt) == 64 and int(receipt, 16) >= 0
    vote = Vote.objects.get()
    assert vote.commitment == merkle.leaf_hash(receipt, str(ballot.pk), "accept")
    assert vote.ballot_id == ballot.pk and vote.choice == "accept"
    assert receipt not in vote.commitment
    assert Elector.objects.get(ballot=ballot, membership=alice).has_voted
    assert Elector.objects.filter(has_voted=True).count() == 1
    assert counts(ballot) == (1, 0)
    assert fresh(ballot).sealed_at is None


def test_one_vote_each_and_it_is_final(mediator, offer, consumers):
    alice, *_ = consumers(4)
    ballot = open_ballot(mediator, offer)
    cast(alice, ballot, "accept")
    assert refusal(lambda: cast(alice, ballot, "accept")) == "already_voted"
    assert refusal(lambda: cast(alice, ballot, "refuse")) == "already_voted"
    assert Vote.objects.count() == 1 and counts(ballot) == (1, 0)


@pytest.mark.parametrize("choice", ["yes", "ACCEPT", "", "abstain"])
def test_the_choice_is_accept_or_refuse(choice, mediator, offer, consumers):
    alice, *_ = consumers(2)
    ballot = open_ballot(mediator, offer)
    member, ballot = services.check_vote(member_id=alice.pk, room_id=ballot.room_id, ballot_id=ballot.pk)
    assert refusal(lambda: services.vote_cast(member=member, ballot=ballot, choice=choice)) == "bad_request"
    assert not Vote.objects.exists()


@pytest.mark.parametrize("role", [Role.MEDIATOR, Role.COMPANY])
def test_the_mediator_and_the_company_do_not_vote(role, mediation, mediator, company, offer, consumers):
    consumers(2)
    ballot = open_ballot(mediator, offer)
    member = mediator if role == Role.MEDIATOR else company
    assert refusal(lambda: cast(member, ballot, "accept")) == "forbidden"


def test_an_unknown_ballot_is_not_found(mediator, plenary, offer, consumers):
    alice, *_ = consumers(2)
    open_ballot(mediator, offer)
    assert refusal(lambda: services.check_vote(member_id=alice.pk, room_id=plenary.pk, ballot_id=987_654)) == "not_found"


def test_accepted_the_moment_the_threshold_is_reached(mediator, offer, consumers):
    voters = consumers(8)  # 75 % of 8: 6
    ballot = open_ballot(mediator, offer)
    for voter in voters[:5]:
        cast(voter, ballot, "accept")
    cast(voters[5], ballot, "refuse")
    cast(voters[6], ballot, "refuse")  # 5 + 1 left can still make 6
    assert fresh(ballot).sealed_at is None
    cast(voters[7], ballot, "accept")
    sealed = fresh(ballot)
    assert (sealed.outcome, sealed.accept, sealed.refuse, sealed.seal_reason) == ("accepted", 6, 2, "certain")


def test_sealed_at_exactly_75_percent_not_one_short(mediator, offer, consumers):
    voters = consumers(4)  # 75 % of 4: 3
    ballot = open_ballot(mediator, offer)
    cast(voters[0], ballot, "accept")
    cast(voters[1], ballot, "accept")
    assert fresh(ballot).sealed_at is None
    cast(voters[2], ballot, "accept")
    assert fresh(ballot).outcome == "accepted"
    assert refusal(lambda: cast(voters[3], ballot, "refuse")) == "ballot_closed"


def test_rejected_the_moment_the_threshold_is_out_of_reach(mediator, offer, consumers):
    voters = consumers(10)  # 8 needed: 3 refusals make it unreachable
    ballot = open_ballot(mediator, offer)
    cast(voters[0], ballot, "refuse")
    cast(voters[1], ballot, "refuse")
    assert fresh(ballot).sealed_at is None
    cast(voters[2], ballot, "refuse")
    sealed = fresh(ballot)
    assert (sealed.outcome, sealed.accept, sealed.refuse, sealed.seal_reason) == ("rejected", 0, 3, "certain")
    assert refusal(lambda: cast(voters[3], ballot, "accept")) == "ballot_closed"
    assert Vote.objects.count() == 3


def test_the_last_instant_before_the_deadline_counts_the_deadline_does_not(monkeypatch, mediator, offer, consumers):
    alice, bob, *_ = consumers(4)
    ballot = open_ballot(mediator, offer, seconds=60)
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: ballot.closes_at - timedelta(microseconds=1))
    cast(alice, ballot, "accept")
    monkeypatch.setattr(timezone, "now", lambda: ballot.closes_at)
    assert refusal(lambda: cast(bob, ballot, "accept")) == "ballot_closed"
    monkeypatch.setattr(timezone, "now", real_now)
    sealed = fresh(ballot)
    assert (sealed.outcome, sealed.accept, sealed.refuse, sealed.seal_reason) == ("rejected", 1, 0, "deadline")


def test_the_do_step_refuses_a_ballot_sealed_after_the_check(mediator, offer, consumers):
    alice, *_ = consumers(3)
    ballot = open_ballot(mediator, offer)
    member, checked = services.check_vote(member_id=alice.pk, room_id=ballot.room_id, ballot_id=ballot.pk)
    services.ballot_close(ballot=fresh(ballot))
    assert refusal(lambda: services.vote_cast(member=member, ballot=checked, choice="accept")) == "ballot_closed"
    assert not Vote.objects.exists() and not Elector.objects.filter(has_voted=True).exists()


def test_votes_spread_over_the_shards(mediator, offer, crowd):
    voters = crowd(40)
    ballot = open_ballot(mediator, offer)
    for voter in voters[:9]:
        cast(voter, ballot, "accept")
    for voter in voters[9:18]:
        cast(voter, ballot, "refuse")
    shards = Tally.objects.filter(ballot=ballot)
    assert shards.count() == 16
    assert sum(s.accept for s in shards) == 9 and sum(s.refuse for s in shards) == 9
    assert sum(1 for s in shards if s.accept or s.refuse) > 1
    assert isinstance(fresh(ballot), Ballot) and fresh(ballot).sealed_at is None
