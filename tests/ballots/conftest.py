"""Offers and ballots for the people of tests/conftest.py, and a fast crowd of consumers."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from ballots import services
from ballots.models import Ballot, Offer
from rooms.models import Membership, MemberStatus, Role

_crowd = itertools.count(1)

TITLE = "Remboursement intégral des frais"
TERMS = "Abonnix rembourse 42 € à chaque abonné et arrête les prélèvements."


def submit_offer(company, room, *, title=TITLE, terms=TERMS, amount_cents=4200) -> Offer:
    actor = services.check_offer_submit(member_id=company.pk, room_id=room.pk)
    frame = services.offer_submit(
        member=actor.member, room_id=room.pk, title=title, terms=terms, amount_cents=amount_cents
    )
    return Offer.objects.get(pk=int(frame["offer"]["id"]))


def open_ballot(mediator, offer, *, seconds=3600, closes_at=None) -> Ballot:
    actor, offer = services.check_ballot_open(member_id=mediator.pk, room_id=offer.room_id, offer_id=offer.pk)
    frame = services.ballot_open(
        mediator=actor.member, offer=offer, closes_at=closes_at or timezone.now() + timedelta(seconds=seconds)
    )
    return Ballot.objects.get(pk=int(frame["ballot"]["id"]))


def cast(member, ballot, choice) -> str:
    member, ballot = services.check_vote(member_id=member.pk, room_id=ballot.room_id, ballot_id=ballot.pk)
    return services.vote_cast(member=member, ballot=ballot, choice=choice)


def fresh(ballot) -> Ballot:
    return Ballot.objects.get(pk=ballot.pk)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The people fixtures set real passwords; hashing them properly is most of a test's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def crowd(mediation):
    """``crowd(n)``: n admitted consumers in bulk (no password hashing: seconds for
    thousands)."""

    def make(n: int, status=MemberStatus.ADMITTED) -> list[Membership]:
        batch = next(_crowd)
        User = get_user_model()
        users = User.objects.bulk_create(
            [User(username=f"crowd-{batch}-{i}", password="!") for i in range(n)], batch_size=2000
        )
        if any(u.pk is None for u in users):
            by_name = dict(User.objects.filter(username__startswith=f"crowd-{batch}-").values_list("username", "pk"))
            for u in users:
                u.pk = by_name[u.username]
        Membership.objects.bulk_create(
            [Membership(user_id=u.pk, mediation=mediation, role=Role.CONSUMER, status=status) for u in users],
            batch_size=2000,
        )
        return list(
            Membership.objects.filter(user__username__startswith=f"crowd-{batch}-").select_related("user").order_by("pk")
        )

    return make


@pytest.fixture
def offer(company, plenary):
    return submit_offer(company, plenary)
