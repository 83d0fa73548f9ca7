"""Votes in group commits (ballots.services.votes_cast, run by rooms.batcher): one
transaction for the votes that waited together, each vote still answered on its own."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from ballots.models import Elector, Tally, Vote
from ballots.services import Cast, votes_cast
from rooms.errors import ActionError
from tests.ballots.conftest import fresh, open_ballot, submit_offer

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_transaction_answers_each_vote_and_seals_once_when_certain(plenary, mediator, company, consumers, make_member, mediation):
    voters = consumers(4)  # 3 accepts of 4 reach 75 %
    ballot = open_ballot(mediator, submit_offer(company, plenary))
    late = make_member(mediation)  # admitted after the opening: not in the electorate

    def cast(member, choice="accept", language="fr"):
        return Cast(str(member.pk), str(plenary.pk), ballot.pk, choice, language)

    results = votes_cast(
        [
            cast(voters[0]),
            cast(voters[0], "refuse", "en"),  # the same voter twice in one batch
            cast(late),
            cast(voters[1], "maybe", "en"),
            cast(company),
            cast(voters[1]),
            cast(voters[2]),
        ]
    )
    outcomes = [r.code if isinstance(r, ActionError) else "receipt" for r in results]
    assert outcomes == ["receipt", "already_voted", "not_eligible", "bad_request", "forbidden", "receipt", "receipt"]
    assert results[1].message == "You have already voted on this ballot."
    # Three votes, counted once each; the third accept made the outcome certain: sealed.
    sealed = fresh(ballot)
    assert (sealed.outcome, sealed.accept, sealed.refuse) == ("accepted", 3, 0)
    assert Vote.objects.filter(ballot=ballot).count() == 3
    assert Elector.objects.filter(ballot=ballot, has_voted=True).count() == 3
    assert Tally.objects.filter(ballot=ballot).aggregate(a=Sum("accept"))["a"] == 3
    receipts = {r[1] for r in results if not isinstance(r, ActionError)}
    assert len(receipts) == 3


def test_a_batch_after_the_seal_is_refused_whole_and_writes_nothing(plenary, mediator, company, consumers):
    voters = consumers(4)
    ballot = open_ballot(mediator, submit_offer(company, plenary))
    votes_cast([Cast(str(v.pk), str(plenary.pk), ballot.pk, "accept") for v in voters[:3]])
    results = votes_cast([Cast(str(voters[3].pk), str(plenary.pk), ballot.pk, "refuse", "en")])
    assert [(r.code, r.message) for r in results] == [("ballot_closed", "This ballot is closed.")]
    assert Vote.objects.filter(ballot=ballot).count() == 3
