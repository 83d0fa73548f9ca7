"""Issue 6, item 5: "who voted" and "what was voted" are stored apart with nothing that
links them, and no API, log event, admin page or log line shows a person's choice."""

import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, models
from django.test import Client

from ballots import services
from ballots.models import Elector, Vote
from rooms.models import Event, Membership
from rooms.services import room_create
from tests.ballots.conftest import cast, fresh, open_ballot

pytestmark = pytest.mark.django_db


def test_votes_carry_nothing_that_points_to_a_person_or_a_moment():
    fields = {f.name: f for f in Vote._meta.get_fields()}
    assert set(fields) == {"commitment", "ballot", "choice"}
    assert Vote._meta.pk.name == "commitment" and not isinstance(Vote._meta.pk, models.AutoField)
    assert not any(isinstance(f, models.DateField | models.TimeField) for f in fields.values())
    assert fields["ballot"].related_model.__name__ == "Ballot"
    electors = {f.name for f in Elector._meta.get_fields()}
    assert electors == {"id", "ballot", "membership", "has_voted"}  # no choice, no time
    # Nothing in the schema relates the two tables to each other or a vote to a person.
    assert not any(f.related_model in (Membership, get_user_model(), Elector) for f in fields.values())


@pytest.fixture
def voted(mediation, plenary, mediator, company, offer, consumers):
    voters = consumers(8)  # 6 accepts needed; 3 accepts + 2 refusals leave it open
    room_create(mediation=mediation, kind="caucus", title="Caucus", caucus_member=voters[0])
    ballot = open_ballot(mediator, offer)
    choices = dict(zip(voters, ["accept", "refuse", "accept", "refuse", "accept"], strict=False))
    receipts = {voter: cast(voter, ballot, choice) for voter, choice in choices.items()}
    return ballot, voters, choices, receipts


def identities(voters) -> list[str]:
    out = []
    for voter in voters:
        out += [voter.user.username, voter.display_name, f'"member_id": "{voter.pk}"', f'"member_id":"{voter.pk}"']
    return out


def get_all(client, urls) -> str:
    texts = []
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 403, 404), (url, response.status_code)
        texts.append(response.content.decode())
    return "\n".join(texts)


def test_company_and_mediator_see_turnout_then_counts_never_a_choice(voted, mediation, plenary, mediator, company):
    ballot, voters, choices, receipts = voted
    urls = [
        f"/api/v1/rooms/{plenary.pk}/events?after_seq=0&limit=1000",
        f"/api/v1/mediations/{mediation.pk}",
        f"/api/v1/mediations/{mediation.pk}/members?limit=1000",
        f"/api/v1/mediations/{mediation.pk}/rooms",
        f"/api/v1/ballots/{ballot.pk}/seal",
        f"/api/v1/ballots/{ballot.pk}/board",
    ]
    for member in (mediator, company):
        client = Client()
        client.force_login(member.user)
        before = get_all(client, urls)
        assert client.get(f"/api/v1/ballots/{ballot.pk}/seal").status_code == 404  # no counts yet
        assert '"accept"' not in before and '"refuse"' not in before
        assert not any(r in before for r in receipts.values())
        assert "has_voted" not in before and "choice" not in before
    services.ballot_close(ballot=fresh(ballot))
    for member in (mediator, company):
        client = Client()
        client.force_login(member.user)
        after = get_all(client, urls)
        assert not any(r in after for r in receipts.values())
        assert "has_voted" not in after
        board = client.get(f"/api/v1/ballots/{ballot.pk}/board").content.decode()
        seal = client.get(f"/api/v1/ballots/{ballot.pk}/seal").content.decode()
        for text in (board, seal):
            assert not any(identity in text for identity in identities(voters))
        assert json.loads(seal)["document"]["accept"] == 3


def test_no_log_event_links_a_voter_to_a_choice(voted, mediation, plenary):
    ballot, voters, choices, receipts = voted
    services.ballot_close(ballot=fresh(ballot))
    events = Event.objects.filter(room__mediation=mediation)
    assert not events.filter(author__in=voters).exists()  # a vote is never a log event
    assert set(events.values_list("type", flat=True)) == {"offer.submitted", "ballot.opened", "ballot.sealed"}
    for event in events:
        text = json.dumps(event.data)
        assert "choice" not in text and "receipt" not in text
        assert not any(r in text for r in receipts.values())
        assert not any(identity in text for identity in identities(voters))


def test_no_admin_page_shows_who_voted_what(voted, mediation, offer):
    ballot, voters, choices, receipts = voted
    services.ballot_close(ballot=fresh(ballot))
    staff = get_user_model().objects.create_superuser("staff", "staff@example.org", "pw")
    client = Client()
    client.force_login(staff)
    for url in ("/admin/ballots/vote/", "/admin/ballots/elector/", "/admin/ballots/tally/"):
        assert client.get(url).status_code == 404  # not in the admin at all
    pages = [
        "/admin/",
        "/admin/ballots/",
        "/admin/ballots/ballot/",
        f"/admin/ballots/ballot/{ballot.pk}/change/",
        "/admin/ballots/offer/",
        f"/admin/ballots/offer/{offer.pk}/change/",
        f"/admin/rooms/mediation/{mediation.pk}/change/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert not any(voter.user.username in text for voter in voters), url
        assert not any(r in text for r in receipts.values()), url
    assert "Remboursement" not in client.get(f"/admin/ballots/offer/{offer.pk}/change/").content.decode()


def test_nothing_is_logged_about_a_vote(caplog, mediator, offer, consumers):
    voters = consumers(4)
    ballot = open_ballot(mediator, offer)
    with caplog.at_level(logging.DEBUG):
        receipt = cast(voters[0], ballot, "refuse")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert receipt not in text and "refuse" not in text
    assert voters[0].user.username not in text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_after_the_seal_no_transaction_id_pairs_an_elector_with_a_vote(mediator, offer, crowd):
    """On PostgreSQL a row keeps the id of the transaction that wrote it (xmin): while the
    ballot is open, a vote and its voter's elector row share one. After the seal the
    worker rewrites both in one transaction, so afterwards they share nothing but that."""
    assert connection.vendor == "postgresql"
    voters = crowd(10)
    ballot = open_ballot(mediator, offer)
    for voter, choice in zip(voters, ["accept", "refuse", "accept", "accept"], strict=False):
        cast(voter, ballot, choice)

    def xmins(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql, [ballot.pk])
            return [row[0] for row in cursor.fetchall()]

    voted_electors = set(xmins("SELECT xmin::text FROM ballots_elector WHERE ballot_id = %s AND has_voted"))
    votes = set(xmins("SELECT xmin::text FROM ballots_vote WHERE ballot_id = %s"))
    assert voted_electors == votes and len(votes) == 4  # the link the seal must erase
    services.ballot_close(ballot=fresh(ballot))
    assert services.ballots_scrub_sealed() == 1  # the worker's pass after the seal
    electors = set(xmins("SELECT xmin::text FROM ballots_elector WHERE ballot_id = %s AND has_voted"))
    votes = set(xmins("SELECT xmin::text FROM ballots_vote WHERE ballot_id = %s"))
    assert len(electors) == 1 and electors == votes
    # The electors who didn't vote keep the opening's transaction: shared by all of them.
    assert len(set(xmins("SELECT xmin::text FROM ballots_elector WHERE ballot_id = %s AND NOT has_voted"))) == 1
