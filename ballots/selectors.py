"""Reads of offers, ballots and seals, with who may read them.

What a reader can learn (issue 6, item 5): anyone in the mediation sees the turnout
while a ballot is open and, once sealed, the counts, the seal and the board (leaves and
choices, no names). Nothing here ever joins an elector to a vote: there is no column
to join them on.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from ballots import board, services
from ballots.models import Ballot, Choice, Offer
from crypto import merkle
from rooms import log
from rooms.errors import ActionError
from rooms.frames import Code
from rooms.models import Event, Outcome
from rooms.selectors import check_admitted

RECEIPT = re.compile(r"[0-9a-f]{64}")


def ballot_get(ballot_id) -> Ballot:
    try:
        pk = int(ballot_id)
        if not 0 < pk < 2**63:
            raise ValueError(pk)
        return Ballot.objects.select_related("offer").get(pk=pk)
    except (Ballot.DoesNotExist, ValueError, TypeError):
        raise ActionError(Code.NOT_FOUND, _("No such ballot.")) from None


def check_ballot_reader(user, ballot_id) -> tuple[Ballot, object]:
    """The ballot and the caller's membership: an admitted member of its mediation."""
    ballot = ballot_get(ballot_id)
    return ballot, check_admitted(user, ballot.mediation_id)


def sealed(ballot: Ballot) -> Ballot:
    if ballot.sealed_at is None or ballot.document is None:
        raise ActionError(Code.NOT_FOUND, _("This ballot is not sealed yet."))
    return ballot


def turnout(ballot: Ballot) -> int:
    if ballot.sealed_at is not None and ballot.accept is not None:
        return ballot.accept + ballot.refuse
    accept, refuse = services.running_counts(ballot.pk)
    return accept + refuse


def ballot_detail(ballot: Ballot, member) -> dict:
    """What a member's client needs to show a ballot: the counts only once sealed."""
    item = {
        "id": str(ballot.pk),
        "offer_id": str(ballot.offer_id),
        "opened_at": log.iso(ballot.opened_at),
        "closes_at": log.iso(ballot.closes_at),
        "eligible": ballot.eligible,
        "threshold": ballot.threshold,
        "voted": turnout(ballot),
        "sealed_at": log.iso(ballot.sealed_at) if ballot.sealed_at else None,
        "me": {"eligible": False, "has_voted": False},
    }
    elector = ballot.electors.filter(membership_id=member.pk).values("has_voted").first()
    if elector is not None:
        item["me"] = {"eligible": True, "has_voted": elector["has_voted"]}
    if ballot.sealed_at is not None:
        item.update(outcome=ballot.outcome, accept=ballot.accept, refuse=ballot.refuse, merkle_root=ballot.merkle_root)
    return item


def seal_of(ballot: Ballot) -> dict:
    sealed(ballot)
    return {"document": ballot.document, "signature": ballot.signature, "key_id": ballot.key_id}


def board_json(ballot: Ballot) -> bytes:
    return board.sealed_board(sealed(ballot)).as_json()


def check_receipt(receipt) -> str:
    if not isinstance(receipt, str) or not receipt:
        raise ActionError(Code.BAD_REQUEST, _("'receipt' is required."))
    return receipt


def proof_of(ballot: Ballot, receipt: str) -> dict:
    """The inclusion proof of the vote cast with ``receipt``. Whoever holds the receipt
    may ask (it is the secret that makes the leaf): no login, no name involved."""
    check_receipt(receipt)
    tree = board.sealed_board(sealed(ballot))
    if not RECEIPT.fullmatch(receipt):
        # Not a receipt this server hands out (64 lowercase hex): it names no vote.
        raise ActionError(Code.NOT_FOUND, _("No vote with this receipt on this ballot."))
    for choice in Choice.values:
        leaf = merkle.leaf_hash(receipt, str(ballot.pk), choice)
        index = tree.leaf_index(leaf)
        if index is not None:
            return {"leaf": leaf, "path": tree.proof(index), "root": tree.root}
    raise ActionError(Code.NOT_FOUND, _("No vote with this receipt on this ballot."))


def agreement_of(mediation) -> Ballot | None:
    """The ballot whose accepted offer is the mediation's agreement, if any."""
    if mediation.outcome != Outcome.AGREEMENT:
        return None
    return Ballot.objects.filter(mediation=mediation, outcome="accepted").order_by("sealed_at").first()


def offer_text(offer: Offer) -> dict | None:
    """The offer as its ``offer.submitted`` event shows it (decrypted), or None once
    the room is shredded."""
    event = Event.objects.filter(room_id=offer.room_id, seq=offer.seq).select_related("room").first()
    if event is None:
        return None
    frame = log.event_frame(event, log.room_data_key(event.room))
    if frame.get("shredded") or frame.get("redacted") or frame.get("unreadable"):
        return None
    return frame["offer"]
