"""Everything a seal commits to, checked against what is stored (``manage.py
verify_seal``). Each check names what differs; an empty list means the seal, its
signature, the counts, the board, the Merkle root, the electorate and the log agree.

It reads the database afresh (never the process's board cache) and recomputes from the
vote rows themselves, so a change to any stored vote, count, board entry or seal field
is reported (issue 6, item 6).
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from ballots import rule, selectors, services
from ballots.models import Ballot, Choice, Elector, Vote
from crypto import merkle, signing
from rooms import frames
from rooms.models import Event

DOCUMENT_FIELDS = {
    "version", "mediation_id", "ballot_id", "offer_id", "offer_hash", "eligible", "electorate_hash",
    "accept", "refuse", "threshold", "outcome", "opened_at", "sealed_at", "merkle_root",
}
HEX256 = re.compile(r"[0-9a-f]{64}")


def verify_ballot(ballot_id) -> list[str]:
    ballot = Ballot.objects.select_related("offer").filter(pk=ballot_id).first()
    if ballot is None:
        return [_("No ballot %(id)s.") % {"id": ballot_id}]
    if ballot.sealed_at is None or not isinstance(ballot.document, dict):
        return [_("Ballot %(id)s is not sealed.") % {"id": ballot_id}]
    document = ballot.document
    problems: list[str] = []

    def differ(what: str, stored, expected) -> None:
        if stored != expected:
            problems.append(
                _("%(what)s: %(stored)s, expected %(expected)s") % {"what": what, "stored": stored, "expected": expected}
            )

    # The document and its signature.
    if set(document) != DOCUMENT_FIELDS:
        problems.append(
            _("seal document fields: %(fields)s, expected exactly %(expected)s")
            % {"fields": sorted(document), "expected": sorted(DOCUMENT_FIELDS)}
        )
    differ(_("seal document version"), document.get("version"), services.SEAL_DOCUMENT_VERSION)
    if not signing.verify(document, ballot.signature, ballot.key_id):
        problems.append(
            _("signature: does not verify under key %(key_id)s over the stored document") % {"key_id": ballot.key_id}
        )

    # The document against the ballot as stored: what the seal would sign for it.
    expected = services.seal_document(
        ballot=ballot, accept=ballot.accept, refuse=ballot.refuse, outcome=ballot.outcome, root=ballot.merkle_root
    )
    del expected["version"]  # checked above
    for field, value in expected.items():
        differ(_("seal field %(field)s (stored ballot)") % {"field": field}, document.get(field), value)

    # The votes: recount, board order and root.
    votes = sorted(Vote.objects.filter(ballot_id=ballot.pk).values_list("commitment", "choice"))
    malformed = [leaf for leaf, choice in votes if not HEX256.fullmatch(leaf) or choice not in Choice.values]
    if malformed:
        problems.append(_("vote rows malformed: %(n)d (first: %(leaf)s)") % {"n": len(malformed), "leaf": malformed[0]})
    accept = sum(1 for _leaf, choice in votes if choice == Choice.ACCEPT)
    refuse = sum(1 for _leaf, choice in votes if choice == Choice.REFUSE)
    differ(_("accept recounted from the votes"), accept, document.get("accept"))
    differ(_("refuse recounted from the votes"), refuse, document.get("refuse"))
    if not malformed:
        differ(_("Merkle root recomputed from the votes"), merkle.merkle_root(leaf for leaf, _c in votes), document.get("merkle_root"))

    # The rule.
    eligible, bp = document.get("eligible"), ballot.threshold_bp
    if isinstance(eligible, int) and isinstance(document.get("accept"), int):
        differ(_("outcome under the rule"), document.get("outcome"), rule.outcome_at_seal(document["accept"], eligible, bp))

    # The electorate frozen at opening, and who has voted.
    electors = list(Elector.objects.filter(ballot_id=ballot.pk).values_list("membership_id", "has_voted"))
    differ(_("electors stored"), len(electors), document.get("eligible"))
    differ(_("electorate hash recomputed"), services.electorate_hash(ballot_id=ballot.pk), document.get("electorate_hash"))
    differ(_("electors marked as having voted"), sum(1 for _m, voted in electors if voted), len(votes))

    # The offer the seal commits to, while its text is readable (not once shredded).
    text = selectors.offer_text(ballot.offer)
    if text is not None:
        differ(
            _("offer hash recomputed from the logged offer"),
            services.offer_hash(offer_id=ballot.offer_id, title=text["title"], terms=text["terms"], amount_cents=text["amount_cents"]),
            document.get("offer_hash"),
        )

    # The room log: what members were told live.
    sealed = Event.objects.filter(room_id=ballot.room_id, seq=ballot.sealed_seq, type=frames.BALLOT_SEALED).first()
    if sealed is None:
        problems.append(_("log: no ballot.sealed event at seq %(seq)s") % {"seq": ballot.sealed_seq})
    else:
        told = {
            "ballot_id": document.get("ballot_id"),
            "outcome": document.get("outcome"),
            "accept": document.get("accept"),
            "refuse": document.get("refuse"),
            "eligible": document.get("eligible"),
            "threshold": document.get("threshold"),
            "merkle_root": document.get("merkle_root"),
            "signature": ballot.signature,
            "key_id": ballot.key_id,
        }
        for field, value in told.items():
            differ(_("log ballot.sealed %(field)s") % {"field": field}, sealed.data.get(field), value)
    opened = Event.objects.filter(room_id=ballot.room_id, seq=ballot.opened_seq, type=frames.BALLOT_OPENED).first()
    if opened is None:
        problems.append(_("log: no ballot.opened event at seq %(seq)s") % {"seq": ballot.opened_seq})
    else:
        announced = opened.data.get("ballot", {})
        differ(_("log ballot.opened eligible"), announced.get("eligible"), document.get("eligible"))
        differ(_("log ballot.opened threshold"), announced.get("threshold"), document.get("threshold"))
        differ(_("log ballot.opened offer_id"), announced.get("offer_id"), document.get("offer_id"))
    return problems
