"""GET /api/v1/ballots/<id>/seal, /proof and /board (PROTOCOL.md), and the board's
in-memory tree checked against crypto.merkle."""

import json
import random
import time

import pytest
from django.test import Client

from ballots import board as boards
from ballots import services
from crypto import merkle, signing
from rooms.models import Role
from tests.ballots.conftest import cast, fresh, open_ballot

pytestmark = pytest.mark.django_db


def client_of(member_or_user=None) -> Client:
    client = Client()
    if member_or_user is not None:
        client.force_login(getattr(member_or_user, "user", member_or_user))
    return client


def error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code


@pytest.fixture
def sealed_ballot(mediator, offer, consumers):
    voters = consumers(8)  # 6 accepts needed: closed with 3 accepts and 2 refusals
    ballot = open_ballot(mediator, offer)
    choices = ["accept", "refuse", "accept", "refuse", "accept"]
    receipts = {cast(v, ballot, c): c for v, c in zip(voters, choices, strict=False)}
    services.ballot_close(ballot=fresh(ballot))
    return fresh(ballot), receipts, voters


def test_nothing_is_published_before_the_seal(mediator, offer, consumers):
    voters = consumers(4)
    ballot = open_ballot(mediator, offer)
    receipt = cast(voters[0], ballot, "accept")
    member = client_of(voters[1])
    error(member.get(f"/api/v1/ballots/{ballot.pk}/seal"), 404, "not_found")
    error(member.get(f"/api/v1/ballots/{ballot.pk}/board"), 404, "not_found")
    error(client_of().get(f"/api/v1/ballots/{ballot.pk}/proof", {"receipt": receipt}), 404, "not_found")


@pytest.mark.parametrize("who", ["consumer", "mediator", "company"])
def test_every_member_reads_the_seal_exactly_as_signed(who, sealed_ballot, mediator, company):
    ballot, _receipts, voters = sealed_ballot
    reader = {"consumer": voters[7], "mediator": mediator, "company": company}[who]
    response = client_of(reader).get(f"/api/v1/ballots/{ballot.pk}/seal")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body == {"document": ballot.document, "signature": ballot.signature, "key_id": ballot.key_id}
    assert signing.verify(body["document"], body["signature"], body["key_id"])
    assert (body["document"]["accept"], body["document"]["refuse"], body["document"]["outcome"]) == (3, 2, "rejected")


def test_the_board_recounts_and_recomputes_the_root(sealed_ballot, company):
    ballot, receipts, _voters = sealed_ballot
    response = client_of(company).get(f"/api/v1/ballots/{ballot.pk}/board")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    board = response.json()
    assert set(board) == {"ballot_id", "leaves", "merkle_root"} and board["ballot_id"] == str(ballot.pk)
    leaves = [entry["leaf"] for entry in board["leaves"]]
    assert leaves == sorted(leaves) and all(set(e) == {"leaf", "choice"} for e in board["leaves"])
    assert merkle.merkle_root(leaves) == board["merkle_root"] == ballot.document["merkle_root"]
    assert sum(e["choice"] == "accept" for e in board["leaves"]) == ballot.document["accept"]
    assert sum(e["choice"] == "refuse" for e in board["leaves"]) == ballot.document["refuse"]
    # Each voter finds their own leaf with their own choice.
    by_leaf = {e["leaf"]: e["choice"] for e in board["leaves"]}
    for receipt, choice in receipts.items():
        assert by_leaf[merkle.leaf_hash(receipt, str(ballot.pk), choice)] == choice


def test_a_receipt_holder_gets_a_proof_without_logging_in(sealed_ballot):
    ballot, receipts, _voters = sealed_ballot
    anyone = client_of()
    for receipt, choice in receipts.items():
        response = anyone.get(f"/api/v1/ballots/{ballot.pk}/proof", {"receipt": receipt})
        assert response.status_code == 200
        proof = response.json()
        assert set(proof) == {"leaf", "path", "root"}
        assert proof["leaf"] == merkle.leaf_hash(receipt, str(ballot.pk), choice)
        assert proof["root"] == ballot.document["merkle_root"]
        assert merkle.verify_proof(proof["leaf"], proof["path"], ballot.document["merkle_root"])
        assert proof["path"] == merkle.merkle_proof(
            [e.commitment for e in ballot.votes.all()], proof["leaf"]
        )


def test_proof_refusals(sealed_ballot):
    ballot, receipts, _voters = sealed_ballot
    anyone = client_of()
    url = f"/api/v1/ballots/{ballot.pk}/proof"
    error(anyone.get(url), 400, "bad_request")
    error(anyone.get(url, {"receipt": ""}), 400, "bad_request")
    # Anything but 64 lowercase hex digits names no vote.
    error(anyone.get(url, {"receipt": "zz"}), 404, "not_found")
    error(anyone.get(url, {"receipt": next(iter(receipts)).upper()}), 404, "not_found")
    error(anyone.get(url, {"receipt": "0" * 64}), 404, "not_found")
    error(anyone.get("/api/v1/ballots/999999/proof", {"receipt": "0" * 64}), 404, "not_found")
    error(anyone.post(url, {"receipt": "0" * 64}), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["seal", "board"])
def test_only_members_of_the_mediation_read_seal_and_board(
    path, sealed_ballot, pending, outsider, make_mediation, make_member
):
    ballot, _receipts, _voters = sealed_ballot
    url = f"/api/v1/ballots/{ballot.pk}/{path}"
    error(client_of().get(url), 401, "not_authenticated")
    error(client_of(outsider).get(url), 403, "forbidden")
    error(client_of(pending).get(url), 403, "forbidden")
    elsewhere = make_member(make_mediation(), Role.MEDIATOR)
    error(client_of(elsewhere).get(url), 403, "forbidden")
    error(client_of(outsider).get(f"/api/v1/ballots/424242/{path}"), 404, "not_found")
    error(client_of(outsider).get(f"/api/v1/ballots/abc/{path}"), 404, "not_found")
    error(client_of(outsider).get(f"/api/v1/ballots/99999999999999999999/{path}"), 404, "not_found")


def test_proofs_come_from_the_cached_tree(sealed_ballot, django_assert_max_num_queries):
    ballot, receipts, _voters = sealed_ballot
    receipt = next(iter(receipts))
    anyone = client_of()
    anyone.get(f"/api/v1/ballots/{ballot.pk}/proof", {"receipt": receipt})  # builds it
    with django_assert_max_num_queries(1):  # the ballot row, not its votes
        response = anyone.get(f"/api/v1/ballots/{ballot.pk}/proof", {"receipt": receipt})
    assert response.status_code == 200


# --- the in-memory tree is crypto.merkle's tree -----------------------------------------------


def random_leaves(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.randbytes(32).hex() for _ in range(n)]


@pytest.mark.parametrize("n", [*range(0, 34), 63, 64, 65, 100, 257])
def test_the_sealed_tree_is_the_protocols(n):
    leaves = random_leaves(n, n)
    votes = [(leaf, "accept" if i % 3 else "refuse") for i, leaf in enumerate(leaves)]
    tree = boards.SealedBoard(7, votes)
    assert tree.root == merkle.merkle_root(leaves)
    for leaf, choice in votes:
        index = tree.leaf_index(leaf)
        assert tree.choice_at(index) == choice
        assert tree.proof(index) == merkle.merkle_proof(leaves, leaf)
    assert tree.leaf_index("f" * 64) is None or "f" * 64 in leaves
    body = json.loads(tree.as_json())
    assert body["leaves"] == [{"leaf": leaf, "choice": choice} for leaf, choice in sorted(votes)]
    assert body["merkle_root"] == tree.root and body["ballot_id"] == "7"


def test_150000_leaves_one_build_then_cheap_proofs():
    leaves = random_leaves(150_000, 1)
    tree = boards.SealedBoard(1, [(leaf, "accept") for leaf in leaves])
    assert tree.root == merkle.merkle_root(leaves)
    sample = random.Random(2).sample(leaves, 200)
    started = time.perf_counter()
    proofs = [tree.proof(tree.leaf_index(leaf)) for leaf in sample]
    elapsed = time.perf_counter() - started
    assert all(merkle.verify_proof(leaf, proof, tree.root) for leaf, proof in zip(sample, proofs, strict=True))
    # Rebuilding per proof costs ~130 ms each; from the cached levels, 200 take far less.
    assert elapsed < 0.5, elapsed
