"""manage.py verify_seal: OK on an untouched seal, exit 1 naming what differs on any
tampered vote, count, board entry, seal field, signature, electorate or log event."""

import io

import pytest
from django.core.management import call_command
from django.utils import translation

from ballots import services
from ballots.models import Ballot, Elector, Offer, Vote
from crypto import merkle, signing
from rooms.models import Event
from tests.ballots.conftest import cast, fresh, open_ballot, submit_offer

pytestmark = pytest.mark.django_db


def verify(ballot_id) -> tuple[int, str]:
    """The command's exit code and output, in English (French is the default)."""
    out = io.StringIO()
    try:
        with translation.override("en"):
            call_command("verify_seal", str(ballot_id), stdout=out)
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def sealed(mediator, offer, consumers):
    voters = consumers(8)  # 6 accepts needed: 3 accepts, 2 refusals, closed: rejected
    ballot = open_ballot(mediator, offer)
    receipts = {cast(v, ballot, c): c for v, c in zip(voters, ["accept", "refuse", "accept", "refuse", "accept"], strict=False)}
    services.ballot_close(ballot=fresh(ballot))
    assert verify(ballot.pk) == (0, "OK\n")
    return fresh(ballot), receipts


def assert_detected(ballot, *words):
    code, out = verify(ballot.pk)
    assert code == 1 and out != "OK\n", out
    for word in words:
        assert word in out, out
    return out


def test_an_accepted_seal_verifies(mediator, offer, consumers):
    voters = consumers(4)
    ballot = open_ballot(mediator, offer)
    for v in voters[:3]:
        cast(v, ballot, "accept")
    assert fresh(ballot).outcome == "accepted"
    assert verify(ballot.pk) == (0, "OK\n")


def test_a_ballot_with_no_vote_verifies(mediator, offer, consumers):
    consumers(2)
    ballot = open_ballot(mediator, offer)
    services.ballot_close(ballot=fresh(ballot))
    assert verify(ballot.pk) == (0, "OK\n")


def test_unknown_or_unsealed_ballots_do_not_verify(mediator, offer, consumers):
    consumers(2)
    ballot = open_ballot(mediator, offer)
    assert verify(ballot.pk)[0] == 1
    assert verify(424242)[0] == 1
    assert verify("nope")[0] == 1


# --- tampered votes and board entries --------------------------------------------------------


def test_a_changed_commitment(sealed):
    ballot, _receipts = sealed
    vote = Vote.objects.filter(ballot=ballot).first()
    Vote.objects.filter(pk=vote.pk).update(commitment=merkle.leaf_hash("f" * 64, str(ballot.pk), vote.choice))
    assert_detected(ballot, "Merkle root")


def test_a_deleted_vote(sealed):
    ballot, _receipts = sealed
    Vote.objects.filter(pk=Vote.objects.filter(ballot=ballot, choice="accept").first().pk).delete()
    assert_detected(ballot, "accept recounted", "Merkle root", "electors marked")


def test_a_stuffed_vote(sealed):
    ballot, _receipts = sealed
    Vote.objects.create(commitment=merkle.leaf_hash("e" * 64, str(ballot.pk), "accept"), ballot=ballot, choice="accept")
    assert_detected(ballot, "accept recounted", "Merkle root")


def test_a_flipped_board_entry(sealed):
    ballot, _receipts = sealed
    vote = Vote.objects.filter(ballot=ballot, choice="refuse").first()
    Vote.objects.filter(pk=vote.pk).update(choice="accept")
    out = assert_detected(ballot, "accept recounted", "refuse recounted")
    assert "Merkle root" not in out  # the root is over commitments; the recount catches it


def test_a_malformed_vote_row(sealed):
    ballot, _receipts = sealed
    Vote.objects.filter(pk=Vote.objects.filter(ballot=ballot).first().pk).update(choice="maybe")
    assert_detected(ballot, "malformed")


# --- tampered counts and seal fields ---------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("accept", 6), ("refuse", 0), ("outcome", "accepted"), ("merkle_root", "0" * 64), ("eligible", 5), ("electorate_hash", "1" * 64), ("threshold_bp", 5000)],
)
def test_a_changed_count_or_field_of_the_ballot_row(sealed, field, value):
    ballot, _receipts = sealed
    Ballot.objects.filter(pk=ballot.pk).update(**{field: value})
    assert_detected(ballot)


@pytest.mark.parametrize(
    "field, value",
    [
        ("version", 2),
        ("mediation_id", "999"),
        ("ballot_id", "999"),
        ("offer_id", "999"),
        ("offer_hash", "2" * 64),
        ("eligible", 5),
        ("electorate_hash", "3" * 64),
        ("accept", 6),
        ("refuse", 0),
        ("threshold", "0.5"),
        ("outcome", "accepted"),
        ("opened_at", "2020-01-01T00:00:00+00:00"),
        ("sealed_at", "2020-01-01T00:00:00+00:00"),
        ("merkle_root", "4" * 64),
    ],
)
def test_each_field_of_the_seal_document(sealed, field, value):
    ballot, _receipts = sealed
    document = {**ballot.document, field: value}
    Ballot.objects.filter(pk=ballot.pk).update(document=document)
    assert_detected(ballot, "signature", field)


def test_an_extra_field_in_the_document(sealed):
    ballot, _receipts = sealed
    Ballot.objects.filter(pk=ballot.pk).update(document={**ballot.document, "note": "x"})
    assert_detected(ballot, "signature", "fields")


def test_the_signature_and_the_key_id(sealed):
    ballot, _receipts = sealed
    other = signing.sign({**ballot.document, "accept": 0})[0]
    Ballot.objects.filter(pk=ballot.pk).update(signature=other)
    assert_detected(ballot, "signature")
    Ballot.objects.filter(pk=ballot.pk).update(signature=ballot.signature, key_id="sk-unknown")
    assert_detected(ballot, "signature")


def test_a_forged_count_re_signed_with_the_real_key_still_disagrees_with_the_votes(sealed):
    """Even an insider holding the sealing key can't make a false count verify: the
    board (the vote rows) recounts otherwise."""
    ballot, _receipts = sealed
    forged = {**ballot.document, "accept": 6, "refuse": 0, "outcome": "accepted"}
    signature, key_id = signing.sign(forged)
    Ballot.objects.filter(pk=ballot.pk).update(document=forged, signature=signature, key_id=key_id, accept=6, refuse=0, outcome="accepted")
    Event.objects.filter(room_id=ballot.room_id, seq=ballot.sealed_seq).update(
        data={**Event.objects.get(room_id=ballot.room_id, seq=ballot.sealed_seq).data, "accept": 6, "refuse": 0, "outcome": "accepted", "signature": signature}
    )
    out = assert_detected(ballot, "accept recounted", "refuse recounted")
    assert "signature:" not in out


# --- the electorate, the offer and the log ----------------------------------------------------


def test_a_removed_elector(sealed):
    ballot, _receipts = sealed
    Elector.objects.filter(pk=Elector.objects.filter(ballot=ballot, has_voted=False).first().pk).delete()
    assert_detected(ballot, "electors stored", "electorate hash")


def test_a_voter_marked_as_not_having_voted(sealed):
    ballot, _receipts = sealed
    Elector.objects.filter(pk=Elector.objects.filter(ballot=ballot, has_voted=True).first().pk).update(has_voted=False)
    assert_detected(ballot, "electors marked")


def test_a_changed_offer_hash(sealed):
    ballot, _receipts = sealed
    Offer.objects.filter(pk=ballot.offer_id).update(offer_hash="5" * 64)
    assert_detected(ballot, "offer_hash")


def test_a_changed_logged_amount(sealed):
    ballot, _receipts = sealed
    offer = Offer.objects.get(pk=ballot.offer_id)
    event = Event.objects.get(room_id=offer.room_id, seq=offer.seq)
    Event.objects.filter(pk=event.pk).update(data={"offer": {**event.data["offer"], "amount_cents": 1}})
    assert_detected(ballot, "offer hash recomputed")


@pytest.mark.parametrize("field", ["accept", "outcome", "merkle_root", "signature"])
def test_a_changed_ballot_sealed_event(sealed, field):
    ballot, _receipts = sealed
    event = Event.objects.get(room_id=ballot.room_id, seq=ballot.sealed_seq)
    Event.objects.filter(pk=event.pk).update(data={**event.data, field: "tampered"})
    assert_detected(ballot, f"log ballot.sealed {field}")


def test_a_changed_ballot_opened_event(sealed):
    ballot, _receipts = sealed
    event = Event.objects.get(room_id=ballot.room_id, seq=ballot.opened_seq)
    Event.objects.filter(pk=event.pk).update(data={"ballot": {**event.data["ballot"], "eligible": 99}})
    assert_detected(ballot, "log ballot.opened eligible")


def test_tampering_with_one_ballot_leaves_the_others_ok(sealed, mediator, company, plenary, consumers):
    ballot, _receipts = sealed
    Vote.objects.filter(ballot=ballot).update(choice="refuse")
    assert verify(ballot.pk)[0] == 1
    second = open_ballot(mediator, submit_offer(company, plenary, title="Deuxième"))
    services.ballot_close(ballot=fresh(second))
    assert verify(second.pk) == (0, "OK\n")
