"""Issue 5.3: after crypto-shredding, the mediation's seals stay verifiable by anyone:
the signed document, its signature under the published key, the recount and the
Merkle root from the board, and each voter's inclusion proof. Only the free text
(messages, offer title and terms) is gone, and the seal never depended on it. Checked
through the public API (``/seal``, ``/board``, ``/proof``, ``/keys``), independently of
Palabre's code, and with ``manage.py verify_seal``."""

import base64
import io
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone, translation

from ballots import selectors
from ballots import services as ballots
from ballots.models import Ballot
from crypto import merkle, signing
from rooms.models import Mediation, Phase

from .conftest import client_of, events_by_seq, post, raw_room

TITLE = "Remboursement des frais de dossier"
TERMS = "Abonnix rembourse 84,50 € à chaque adhérent sous 30 jours."


def submit_offer(company, room):
    actor = ballots.check_offer_submit(member_id=company.pk, room_id=room.pk)
    frame = ballots.offer_submit(member=actor.member, room_id=room.pk, title=TITLE, terms=TERMS, amount_cents=8450)
    return frame


def open_ballot(mediator, room, offer_id):
    actor, offer = ballots.check_ballot_open(member_id=mediator.pk, room_id=room.pk, offer_id=int(offer_id))
    frame = ballots.ballot_open(mediator=actor.member, offer=offer, closes_at=timezone.now() + timedelta(hours=1))
    return Ballot.objects.get(pk=int(frame["ballot"]["id"]))


def cast(member, ballot, choice) -> str:
    member, ballot = ballots.check_vote(member_id=member.pk, room_id=ballot.room_id, ballot_id=ballot.pk)
    return ballots.vote_cast(member=member, ballot=ballot, choice=choice)


def get_json(client, url, **params) -> dict:
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()


def verify_seal(ballot) -> tuple[int, str]:
    """``manage.py verify_seal``: (exit code, last line of its output)."""
    out = io.StringIO()
    with translation.override("en"):
        try:
            call_command("verify_seal", str(ballot.pk), stdout=out, stderr=out)
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        except CommandError:
            code = 1
    lines = out.getvalue().strip().splitlines()
    return code, lines[-1] if lines else ""


def independent_check(seal: dict, board: dict, published_keys: list[dict]) -> None:
    """What any member does with the public key alone, without Palabre's code for the
    signature: Ed25519 over the canonical JSON, the recount, the root."""
    key = next(k for k in published_keys if k["key_id"] == seal["key_id"])
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    canonical = json.dumps(seal["document"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    public_key.verify(base64.b64decode(seal["signature"]), canonical.encode("utf-8"))  # raises if not
    leaves = [entry["leaf"] for entry in board["leaves"]]
    assert seal["document"]["accept"] == sum(e["choice"] == "accept" for e in board["leaves"])
    assert seal["document"]["refuse"] == sum(e["choice"] == "refuse" for e in board["leaves"])
    assert merkle.merkle_root(leaves) == board["merkle_root"] == seal["document"]["merkle_root"]


@pytest.mark.django_db
def test_seals_stay_verifiable_after_the_mediation_is_shredded(
    mediation, plenary, mediator, company, consumers
):
    voters = consumers(4)  # 75 % of 4: 3 accepts make the outcome certain
    offer_frame = submit_offer(company, plenary)
    post(plenary, voters[0], "Je vote pour.")
    ballot = open_ballot(mediator, plenary, offer_frame["offer"]["id"])
    receipts = {cast(v, ballot, "accept"): "accept" for v in voters[:3]}
    ballot = Ballot.objects.select_related("offer").get(pk=ballot.pk)
    assert ballot.outcome == "accepted"
    assert Mediation.objects.get(pk=mediation.pk).phase == Phase.CLOSED  # the agreement closed it

    member = client_of(voters[3])  # a member who did not vote: reads what everyone reads
    keys = Client().get("/api/v1/keys").json()["keys"]
    seal_before = get_json(member, f"/api/v1/ballots/{ballot.pk}/seal")
    board_before = get_json(member, f"/api/v1/ballots/{ballot.pk}/board")
    proofs_before = {r: get_json(Client(), f"/api/v1/ballots/{ballot.pk}/proof", receipt=r) for r in receipts}
    assert verify_seal(ballot) == (0, "OK")
    log_before = events_by_seq(plenary, voters[0])
    assert selectors.offer_text(ballot.offer)["terms"] == TERMS
    independent_check(seal_before, board_before, keys)

    with translation.override("en"):
        call_command("shred", str(mediation.pk), stdout=io.StringIO())

    assert raw_room(plenary.pk)["wrapped_key"] is None
    ballot = Ballot.objects.select_related("offer").get(pk=ballot.pk)
    # The free text is gone...
    assert selectors.offer_text(ballot.offer) is None
    log_after = events_by_seq(plenary, voters[0])
    offer_event = log_after[offer_frame["seq"]]
    assert offer_event["shredded"] is True
    assert offer_event["offer"] == {"id": offer_frame["offer"]["id"], "title": None, "terms": None, "amount_cents": 8450}
    # ...the seal, its event and its board are not.
    sealed_event = log_after[ballot.sealed_seq]
    assert sealed_event == log_before[ballot.sealed_seq] and "shredded" not in sealed_event
    assert sealed_event["signature"] == seal_before["signature"]
    seal_after = get_json(member, f"/api/v1/ballots/{ballot.pk}/seal")
    board_after = get_json(member, f"/api/v1/ballots/{ballot.pk}/board")
    assert seal_after == seal_before and board_after == board_before
    assert signing.verify(seal_after["document"], seal_after["signature"], seal_after["key_id"])
    independent_check(seal_after, board_after, keys)
    assert verify_seal(ballot) == (0, "OK")
    for receipt, choice in receipts.items():
        proof = get_json(Client(), f"/api/v1/ballots/{ballot.pk}/proof", receipt=receipt)
        assert proof == proofs_before[receipt]
        assert proof["leaf"] == merkle.leaf_hash(receipt, str(ballot.pk), choice)
        assert merkle.verify_proof(proof["leaf"], proof["path"], seal_after["document"]["merkle_root"])
    # Whoever kept the offer's text can still prove it is the one the seal commits to.
    assert seal_after["document"]["offer_hash"] == ballots.offer_hash(
        offer_id=ballot.offer_id, title=TITLE, terms=TERMS, amount_cents=8450
    )
