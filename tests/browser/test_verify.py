"""static/palabre/verify.js against the server's own crypto (crypto.signing, crypto.merkle):
what Chromium's WebCrypto checks is exactly what Python signs and hashes."""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto.merkle import leaf_hash, merkle_proof, merkle_root, new_receipt
from crypto.signing import canonical_json

pytestmark = pytest.mark.browser

BALLOT = "42"
OFFER = {"id": "3", "title": "Remboursement intégral", "terms": "Sous 30 jours.\nSans condition « aucune ».", "amount_cents": 14990}
TRICKY = {
    "z": 'ligne\nnouvelle "guillemets" \\ \u0001 \u007f € \u2028',
    "é": 1,
    "a": [True, None, {"b": -3, "B": 0}, []],
    "\U0001f600": "😀",
    "\uffff": 2,
    "": {},
}


def _seal_fixture():
    votes = [(new_receipt(), choice) for choice in ["accept"] * 5 + ["refuse"] * 2]
    leaves = sorted(({"leaf": leaf_hash(r, BALLOT, c), "choice": c} for r, c in votes), key=lambda e: e["leaf"])
    root = merkle_root(e["leaf"] for e in leaves)
    document = {
        "version": 1,
        "mediation_id": "7",
        "ballot_id": BALLOT,
        "offer_id": OFFER["id"],
        "offer_hash": hashlib.sha256(canonical_json(OFFER)).hexdigest(),
        "eligible": 10,
        "electorate_hash": hashlib.sha256(b"1\n2").hexdigest(),
        "accept": 5,
        "refuse": 2,
        "threshold": "0.75",
        "outcome": "rejected",  # 5 of 10 < ceil(0.75 × 10) = 8
        "opened_at": "2026-11-23T10:00:00+00:00",
        "sealed_at": "2026-11-23T11:00:00+00:00",
        "merkle_root": root,
    }
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "seal": {"document": document, "signature": base64.b64encode(key.sign(canonical_json(document))).decode(), "key_id": "sk-test"},
        "keys": [{"key_id": "sk-test", "algorithm": "Ed25519", "public_key": base64.b64encode(public).decode()}],
        "board": {"ballot_id": BALLOT, "leaves": leaves, "merkle_root": root},
        "voters": [
            {"receipt": r, "choice": c, "proof": {"leaf": leaf_hash(r, BALLOT, c), "path": merkle_proof([e["leaf"] for e in leaves], leaf_hash(r, BALLOT, c)), "root": root}}
            for r, c in votes
        ],
        "offer": OFFER,
        "tricky": TRICKY,
        "tricky_canonical": canonical_json(TRICKY).decode(),
        "roots": [merkle_root(e["leaf"] for e in leaves[:n]) for n in range(len(leaves) + 1)],
    }


CHECKS = """async (data) => {
  const v = await import("/static/palabre/verify.js");
  const { parseEuros } = await import("/static/palabre/ballots.js");
  const { seal, keys, board, voters, offer } = data;
  const doc = seal.document;
  const out = {};
  out.canonical = v.canonicalJSON(data.tricky) === data.tricky_canonical;
  out.signature = await v.verifySignature(seal, keys);
  out.tampered = await v.verifySignature({ ...seal, document: { ...doc, accept: 6 } }, keys);
  out.otherKey = await v.verifySignature({ ...seal, key_id: "sk-other" }, keys);
  out.outcome = v.verifyOutcome(doc);
  out.flippedOutcome = v.verifyOutcome({ ...doc, outcome: "accepted" });
  out.board = await v.verifyBoard(board, doc);
  const flipped = board.leaves.map((e, i) => (i === 0 ? { ...e, choice: e.choice === "accept" ? "refuse" : "accept" } : e));
  out.flippedBoard = await v.verifyBoard({ ...board, leaves: flipped }, doc);
  out.receipts = [];
  for (const voter of voters) {
    out.receipts.push(await v.verifyReceipt({ receipt: voter.receipt, ballotId: doc.ballot_id, choice: voter.choice }, voter.proof, doc, board));
  }
  const first = voters[0];
  const other = first.choice === "accept" ? "refuse" : "accept";
  out.wrongChoice = await v.verifyReceipt({ receipt: first.receipt, ballotId: doc.ballot_id, choice: other }, first.proof, doc, board);
  out.badPath = await v.verifyReceipt({ receipt: first.receipt, ballotId: doc.ballot_id, choice: first.choice },
    { ...first.proof, path: first.proof.path.map((s) => ({ ...s, side: s.side === "left" ? "right" : "left" })) }, doc);
  out.offer = await v.verifyOfferHash(offer, doc);
  out.changedOffer = await v.verifyOfferHash({ ...offer, amount_cents: 100 }, doc);
  out.roots = [];
  for (let n = 0; n <= board.leaves.length; n += 1) out.roots.push(await v.merkleRoot(board.leaves.slice(0, n).map((e) => e.leaf)));
  out.needed = [["0.75", 10], ["0.75", 149000], ["0.5", 3], ["1", 7], ["0.75", 0], ["0.6667", 3]].map(([t, n]) => v.acceptsNeeded(t, n));
  out.euros = ["149,90", "1 234,5", "150", "", "12.345", "abc", "0,05 €"].map((t) => { const c = parseEuros(t); return Number.isNaN(c) ? "NaN" : c; });
  return out;
}"""


def test_seal_receipt_and_board_checks_match_python(server, browser):
    data = _seal_fixture()
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.goto("/")  # a page of Palabre: same origin as the modules, a secure context
        out = page.evaluate(CHECKS, data)
    finally:
        context.close()
    assert out["canonical"] is True
    assert out["signature"] == {"ok": True}
    assert out["tampered"] == {"ok": False, "reason": "bad_signature"}
    assert out["otherKey"] == {"ok": False, "reason": "unknown_key"}
    assert out["outcome"] == {"ok": True, "needed": 8}
    assert out["flippedOutcome"] == {"ok": False, "reason": "outcome_mismatch"}
    assert out["board"] == {"ok": True, "accept": 5, "refuse": 2}
    assert out["flippedBoard"] == {"ok": False, "reason": "count_mismatch"}
    assert [r["ok"] for r in out["receipts"]] == [True] * 7
    assert out["wrongChoice"] == {"ok": False, "reason": "leaf_mismatch"}
    assert out["badPath"] == {"ok": False, "reason": "root_mismatch"}
    assert out["offer"] == {"ok": True}
    assert out["changedOffer"] == {"ok": False, "reason": "offer_mismatch"}
    assert out["roots"] == data["roots"]
    assert out["needed"] == [8, 111750, 2, 7, 0, 3]
    assert out["euros"] == [14990, 123450, 15000, None, "NaN", "NaN", 5]
