"""Offers, ballots, votes and seals: one function per rule (HackSoft ``services.py``).

Each live action is a ``check_*`` step (look up, authorise, validate: Zulip's
``check_add_reaction``) and a write that runs in ``transaction.atomic`` and broadcasts on
commit (``rooms.broadcast``). Consumers, views, the worker and the management commands
all call these.

How a vote is counted exactly without a hot row (issue 6, item 8), in four facts:

1. ``vote_cast`` holds the ballot's lock SHARED for its whole transaction and reads
   ``sealed_at``/``closes_at`` only once it holds it; ``ballot_seal`` holds it
   EXCLUSIVE and sets ``sealed_at`` (``ballots.locks``). So every cast either commits
   before the seal's first statement (the seal waited for it) or starts reading after
   the seal committed (and is refused ``ballot_closed``): the seal recounts exactly the
   votes that were accepted, on any number of processes, and every receipt ever handed
   out is on the board.
2. Casts don't wait for one another: the shared lock doesn't conflict with itself, the
   ballot row is only read, the elector row is the voter's own, the vote is a new row,
   and the running count is one of 16 ``Tally`` shards picked at random.
3. Counts only grow while a ballot is open. After its commit, a cast sums the shards in
   one statement: that sum holds every vote committed so far, its own included. If it
   makes the outcome certain, the final count (a superset) does too: sealing is right.
   Of the casts that together make it certain, the one that commits last reads a sum
   that includes them all, so a certain outcome is never missed (and if that process
   dies in between, the worker's pass seals it: ``ballots_seal_due``).
4. ``UPDATE … SET sealed_at … WHERE sealed_at IS NULL`` under the exclusive lock has one
   winner: exactly one seal, one ``ballot.sealed`` event, however many callers race
   (the casts that saw certainty, the mediator's close, the worker, a late action).
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from ballots import locks, rule
from ballots.models import (
    TALLY_SHARDS,
    Ballot,
    Choice,
    Elector,
    Offer,
    SealReason,
    Tally,
    Vote,
)
from crypto import merkle, signing
from rooms import broadcast, frames, log
from rooms import services as room_services
from rooms.errors import ActionError, speaking
from rooms.frames import Code
from rooms.models import Mediation, Membership, MemberStatus, Outcome, Role, Room, RoomKind

logger = logging.getLogger("palabre.ballots")

TITLE_MAX_CHARS = 200
TERMS_MAX_CHARS = 20_000
SEAL_DOCUMENT_VERSION = 1


# --- who acts -------------------------------------------------------------------------------


def check_actor(*, member_id, room_id, role: str) -> room_services.Actor:
    """``rooms.services.check_actor``, and the member must belong to the room's own
    mediation: a socket is bound to one at its handshake, but these functions are
    called by other callers too, with any pair of ids."""
    actor = room_services.check_actor(member_id=member_id, room_id=room_id, roles=(role,))
    check_same_mediation(actor)
    return actor


def check_same_mediation(actor: room_services.Actor) -> None:
    if actor.member.mediation_id != actor.room.mediation_id:
        raise ActionError(Code.FORBIDDEN, _("You are not a member of this mediation."))


# --- offers ---------------------------------------------------------------------------------


def check_offer_submit(*, member_id, room_id) -> room_services.Actor:
    actor = check_actor(member_id=member_id, room_id=room_id, role=Role.COMPANY)
    if actor.room.kind != RoomKind.PLENARY:
        raise ActionError(Code.BAD_REQUEST, _("Offers are submitted in the plenary room."))
    return actor


def offer_hash(*, offer_id, title: str, terms: str, amount_cents: int | None) -> str:
    """What the seal commits to (PROTOCOL.md): hex SHA-256 of the canonical JSON."""
    return signing.canonical_hash(
        {"id": str(offer_id), "title": title, "terms": terms, "amount_cents": amount_cents}
    )


def offer_submit(
    *, member: Membership, room_id, title: str, terms: str, amount_cents: int | None
) -> dict:
    """Logs ``offer.submitted`` in the plenary room, title and terms encrypted with the
    room's key like a chat message's body; returns the event's frame. The room row is
    locked by the log append until commit."""
    with transaction.atomic():
        offer = Offer.objects.create(
            mediation_id=member.mediation_id,
            room_id=room_id,
            author=member,
            amount_cents=amount_cents,
            submitted_at=timezone.now(),
        )
        frame = log.append(
            room_id=room_id,
            type=frames.OFFER_SUBMITTED,
            data={"offer": {"id": str(offer.pk), "amount_cents": amount_cents}},
            secret={"offer": {"title": title, "terms": terms}},
            author_id=member.pk,
        )
        Offer.objects.filter(pk=offer.pk).update(
            seq=frame["seq"],
            submitted_at=datetime.fromisoformat(frame["at"]),
            offer_hash=offer_hash(offer_id=offer.pk, title=title, terms=terms, amount_cents=amount_cents),
        )
        broadcast.to_room(room_id, frame)
    return frame


# --- opening a ballot ------------------------------------------------------------------------


def check_ballot_open(*, member_id, room_id, offer_id: int) -> tuple[room_services.Actor, Offer]:
    actor = check_actor(member_id=member_id, room_id=room_id, role=Role.MEDIATOR)
    if actor.room.kind != RoomKind.PLENARY:
        raise ActionError(Code.BAD_REQUEST, _("Ballots are opened in the plenary room."))
    offer = Offer.objects.filter(pk=offer_id, mediation_id=actor.mediation.pk).first()
    if offer is None:
        raise ActionError(Code.NOT_FOUND, _("No such offer in this mediation."))
    # A ballot left open past its deadline (a worker down) is sealed before the check
    # "one open ballot at a time" reads it.
    for due in Ballot.objects.filter(
        mediation_id=actor.mediation.pk, sealed_at__isnull=True, closes_at__lte=timezone.now()
    ):
        ballot_seal(ballot=due, reason=SealReason.DEADLINE)
    return actor, offer


def ballot_open(*, mediator: Membership, offer: Offer, closes_at: datetime) -> dict:
    """Opens the ballot on ``offer`` and freezes its electorate: the consumers admitted at
    this instant. Locks the mediation row (``select_for_update``) so that two openings
    in one mediation queue; the electorate is copied by one ``INSERT … SELECT``, so it is
    the admitted consumers of one snapshot, and ``eligible`` is exactly its row count."""
    with transaction.atomic():
        mediation = Mediation.objects.select_for_update().get(pk=offer.mediation_id)
        now = timezone.now()
        if closes_at <= now:
            raise ActionError(Code.BAD_REQUEST, _("The ballot's deadline must be in the future."))
        if closes_at > mediation.closes_at:
            raise ActionError(Code.BAD_REQUEST, _("The ballot cannot close after the mediation does."))
        if Ballot.objects.filter(offer_id=offer.pk).exists():
            raise ActionError(Code.BAD_REQUEST, _("This offer already has a ballot."))
        if Ballot.objects.filter(mediation_id=mediation.pk, sealed_at__isnull=True).exists():
            raise ActionError(Code.BAD_REQUEST, _("Another ballot of this mediation is still open."))
        try:
            with transaction.atomic():
                ballot = Ballot.objects.create(
                    offer=offer,
                    mediation=mediation,
                    room_id=offer.room_id,
                    opened_at=now,
                    closes_at=closes_at,
                    eligible=0,
                    threshold_bp=mediation.threshold_bp,
                    electorate_hash="",
                )
        except IntegrityError:
            raise ActionError(Code.BAD_REQUEST, _("This offer already has a ballot.")) from None
        eligible = _freeze_electorate(ballot=ballot)
        if eligible == 0:
            raise ActionError(Code.BAD_REQUEST, _("No admitted consumer: a ballot needs at least one elector."))
        Tally.objects.bulk_create(Tally(ballot=ballot, shard=s) for s in range(TALLY_SHARDS))
        frame = log.append(
            room_id=ballot.room_id,
            type=frames.BALLOT_OPENED,
            data={
                "ballot": {
                    "id": str(ballot.pk),
                    "offer_id": str(offer.pk),
                    "closes_at": log.iso(closes_at),
                    "eligible": eligible,
                    "threshold": ballot.threshold,
                }
            },
            author_id=mediator.pk,
        )
        Ballot.objects.filter(pk=ballot.pk).update(
            eligible=eligible,
            electorate_hash=electorate_hash(ballot_id=ballot.pk),
            opened_seq=frame["seq"],
        )
        broadcast.to_room(ballot.room_id, frame)
    return frame


def _freeze_electorate(*, ballot: Ballot) -> int:
    # One statement, however large the mediation: 150,000 rows without a round trip each.
    elector = Elector._meta.db_table
    membership = Membership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {elector} (ballot_id, membership_id, has_voted) "
            f"SELECT %s, id, %s FROM {membership} "
            "WHERE mediation_id = %s AND role = %s AND status = %s",
            [ballot.pk, False, ballot.mediation_id, Role.CONSUMER, MemberStatus.ADMITTED],
        )
        return cursor.rowcount


def electorate_hash(*, ballot_id) -> str:
    """PROTOCOL.md: SHA-256 of the electors' member ids as strings, sorted as strings,
    joined by newlines."""
    ids = Elector.objects.filter(ballot_id=ballot_id).values_list("membership_id", flat=True)
    return signing.sha256_hex("\n".join(sorted(str(i) for i in ids)).encode())


# --- the ballot an action touches ------------------------------------------------------------


def check_ballot(*, room_id, ballot_id: int) -> Ballot:
    """The ballot of the room's mediation, sealed first if its deadline has passed: a
    dead worker never lets a late vote in, nor leaves a due ballot open."""
    ballot = Ballot.objects.filter(pk=ballot_id, mediation__rooms=room_id).first()
    if ballot is None:
        raise ActionError(Code.NOT_FOUND, _("No such ballot in this mediation."))
    seal_if_due(ballot)
    return ballot


def seal_if_due(ballot: Ballot) -> None:
    """Seals a ballot past its deadline that no worker sealed, and reloads it."""
    if ballot.sealed_at is None and timezone.now() >= ballot.closes_at:
        ballot_seal(ballot=ballot, reason=SealReason.DEADLINE)
        ballot.refresh_from_db()


# --- casting a vote --------------------------------------------------------------------------


def check_vote(*, member_id, room_id, ballot_id: int) -> tuple[Membership, Ballot]:
    ballot = check_ballot(room_id=room_id, ballot_id=ballot_id)
    return check_voter(ballot=ballot, **room_services.actor_rows(member_id=member_id, room_id=room_id)), ballot


def check_voter(*, ballot: Ballot | None, member: Membership | None, room: Room | None) -> Membership:
    """Who may cast a vote on ``ballot`` from ``room``: the one rule, on rows already
    read (``check_vote`` for one vote, ``votes_cast`` for a batch read in bulk)."""
    if ballot is None or room is None or ballot.mediation_id != room.mediation_id:
        raise ActionError(Code.NOT_FOUND, _("No such ballot in this mediation."))
    actor = _ballot_actor(ballot=ballot, member=member, room=room, role=Role.CONSUMER)
    if ballot.sealed_at is not None:
        raise ActionError(Code.BALLOT_CLOSED, _("This ballot is closed."))
    return actor.member


def _check_ballot_actor(*, member_id, room_id, ballot: Ballot, role: str) -> room_services.Actor:
    return _ballot_actor(ballot=ballot, role=role, **room_services.actor_rows(member_id=member_id, room_id=room_id))


def _ballot_actor(*, ballot: Ballot, member: Membership | None, room: Room | None, role: str) -> room_services.Actor:
    try:
        actor = room_services.check_loaded_actor(member=member, room=room, roles=(role,))
    except ActionError as error:
        # An accepted offer closes the mediation: a late vote on that ballot is told the
        # ballot is closed, as on any sealed ballot, rather than the room.
        if error.code == Code.ROOM_CLOSED and ballot.sealed_at is not None:
            raise ActionError(Code.BALLOT_CLOSED, _("This ballot is closed.")) from None
        raise
    check_same_mediation(actor)
    return actor


def vote_cast(*, member: Membership, ballot: Ballot, choice: str) -> str:
    """Records one final vote and returns its receipt (for the voter alone): a batch of
    one of ``votes_cast``'s write. Errors: ``ballot_closed``, ``not_eligible`` (not in the
    electorate frozen at opening), ``already_voted``."""
    if choice not in Choice.values:
        raise ActionError(Code.BAD_REQUEST, _("'choice' is accept or refuse."))
    with transaction.atomic():
        [result] = _votes_record(ballot_id=ballot.pk, votes=[(member.pk, choice, None)])
    if isinstance(result, ActionError):
        raise result
    _seal_after_votes(ballot)
    return result


class Cast(NamedTuple):
    member_id: str
    room_id: str
    ballot_id: int
    choice: str
    language: str | None = None  # the voter's: a refusal is said in it


def votes_cast(casts: list[Cast]) -> list[tuple[Ballot, str] | ActionError]:
    """Casts votes together (a group commit): the checks on rows read in bulk, then one
    transaction holding each ballot's lock shared once, with one statement per table
    per ballot whatever the number of votes, so one WAL flush for the batch instead of
    one per vote. Each vote is answered on its own, in its place: (ballot, receipt), or
    its ActionError in its voter's language. After the commit each ballot that took
    votes is sealed if its outcome became certain. A busy process sends its votes here
    in batches (rooms.batcher); one vote is a batch of one."""
    results: list = [None] * len(casts)
    ballots = Ballot.objects.in_bulk({c.ballot_id for c in casts})
    for ballot in ballots.values():
        seal_if_due(ballot)  # a dead worker: sealed now, and every vote on it refused
    members, rooms = room_services.actors_rows(
        member_ids=[c.member_id for c in casts], room_ids=[c.room_id for c in casts]
    )
    by_ballot: dict[int, list[int]] = {}
    for i, cast in enumerate(casts):
        with speaking(cast.language):
            try:
                if cast.choice not in Choice.values:
                    raise ActionError(Code.BAD_REQUEST, _("'choice' is accept or refuse."))
                check_voter(
                    ballot=ballots.get(int(cast.ballot_id)),
                    member=members.get(int(cast.member_id)),
                    room=rooms.get(int(cast.room_id)),
                )
            except ActionError as error:
                results[i] = error
                continue
        by_ballot.setdefault(int(cast.ballot_id), []).append(i)
    with transaction.atomic():
        for ballot_id in sorted(by_ballot):
            indexes = by_ballot[ballot_id]
            votes = [(int(casts[i].member_id), casts[i].choice, casts[i].language) for i in indexes]
            for i, result in zip(indexes, _votes_record(ballot_id=ballot_id, votes=votes), strict=True):
                results[i] = result if isinstance(result, ActionError) else (ballots[ballot_id], result)
    for ballot_id, indexes in by_ballot.items():
        if any(not isinstance(results[i], ActionError) for i in indexes):
            _seal_after_votes(ballots[ballot_id])
    return results


# Said in each voter's language when the batch answers them (_votes_record).
CLOSED = gettext_noop("This ballot is closed.")
ALREADY_VOTED = gettext_noop("You have already voted on this ballot.")
NOT_ELIGIBLE = gettext_noop("You are not in this ballot's electorate.")


def _votes_record(*, ballot_id: int, votes: list[tuple[int, str, str | None]]) -> list:
    """Writes (member id, choice, language) votes on one ballot; a receipt or an
    ActionError for each, in order. Inside the caller's transaction: the receipts count
    once it commits.

    Holds the ballot lock shared (``ballots.locks``) and nothing else that another cast
    waits for; see the module docstring for why the count stays exact. Each voter's
    elector row is marked in one ``UPDATE … RETURNING``: two sockets of one voter (here
    or on another process) queue on that row, and the second finds it already marked.
    Nothing about the choice is written to it."""

    def refused(language, code, message) -> ActionError:
        with speaking(language):
            return ActionError(code, _(message))


    locks.ballot_shared(ballot_id)
    state = Ballot.objects.filter(pk=ballot_id).values("sealed_at", "closes_at").get()
    if state["sealed_at"] is not None or timezone.now() >= state["closes_at"]:
        return [refused(lang, Code.BALLOT_CLOSED, CLOSED) for _m, _c, lang in votes]
    first: dict[int, int] = {}
    for i, (member_id, _choice, _lang) in enumerate(votes):
        first.setdefault(member_id, i)
    table = Elector._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET has_voted = %s WHERE ballot_id = %s AND has_voted = %s "
            f"AND membership_id IN ({', '.join(['%s'] * len(first))}) RETURNING membership_id",
            [True, ballot_id, False, *first],
        )
        marked = {row[0] for row in cursor.fetchall()}
    electors = set(
        Elector.objects.filter(ballot_id=ballot_id, membership_id__in=set(first) - marked).values_list(
            "membership_id", flat=True
        )
    )
    results: list = []
    new_votes: list[Vote] = []
    counts = {Choice.ACCEPT: 0, Choice.REFUSE: 0}
    for i, (member_id, choice, language) in enumerate(votes):
        if member_id in marked and first[member_id] == i:
            receipt = merkle.new_receipt()
            new_votes.append(Vote(commitment=merkle.leaf_hash(receipt, str(ballot_id), choice), ballot_id=ballot_id, choice=choice))
            counts[choice] += 1
            results.append(receipt)
        elif member_id in marked or member_id in electors:
            results.append(refused(language, Code.ALREADY_VOTED, ALREADY_VOTED))
        else:
            results.append(refused(language, Code.NOT_ELIGIBLE, NOT_ELIGIBLE))
    if new_votes:
        Vote.objects.bulk_create(new_votes)
        Tally.objects.filter(ballot_id=ballot_id, shard=secrets.randbelow(TALLY_SHARDS)).update(
            accept=F("accept") + counts[Choice.ACCEPT], refuse=F("refuse") + counts[Choice.REFUSE]
        )
    return results


def _seal_after_votes(ballot: Ballot) -> None:
    try:
        seal_if_certain(ballot=ballot)
    except DatabaseError:
        # The votes are in; the worker's pass seals what a failed attempt here did not.
        logger.warning("sealing ballot %s after a vote failed; the worker will", ballot.pk, exc_info=True)


def running_counts(ballot_id) -> tuple[int, int]:
    """Committed accepts and refusals, from the shards, in one statement. Never shown
    to anyone before the seal: only their sum (the turnout) is."""
    sums = Tally.objects.filter(ballot_id=ballot_id).aggregate(accept=Sum("accept"), refuse=Sum("refuse"))
    return sums["accept"] or 0, sums["refuse"] or 0


def seal_if_certain(*, ballot: Ballot) -> dict | None:
    accept, refuse = running_counts(ballot.pk)
    if rule.certain_outcome(accept, refuse, ballot.eligible, ballot.threshold_bp) is None:
        return None
    return ballot_seal(ballot=ballot, reason=SealReason.CERTAIN)


# --- closing and sealing ---------------------------------------------------------------------


def check_ballot_close(*, member_id, room_id, ballot_id: int) -> Ballot:
    ballot = check_ballot(room_id=room_id, ballot_id=ballot_id)
    actor = _check_ballot_actor(member_id=member_id, room_id=room_id, ballot=ballot, role=Role.MEDIATOR)
    if actor.room.kind != RoomKind.PLENARY:
        raise ActionError(Code.BAD_REQUEST, _("Ballots are closed in the plenary room."))
    if ballot.sealed_at is not None:
        raise ActionError(Code.BALLOT_CLOSED, _("This ballot is already sealed."))
    return ballot


def ballot_close(*, ballot: Ballot) -> dict:
    """The mediator closes the ballot now: accepted iff the threshold is met."""
    frame = ballot_seal(ballot=ballot, reason=SealReason.CLOSED)
    if frame is None:
        raise ActionError(Code.BALLOT_CLOSED, _("This ballot is already sealed."))
    return frame


def ballot_seal(*, ballot: Ballot, reason: str) -> dict | None:
    """Seals the ballot once; returns the ``ballot.sealed`` frame, or None when another
    caller sealed it first. Must not run inside an outer transaction: it takes the
    ballot lock EXCLUSIVE, waiting for the casts in flight (``ballots.locks``).

    The counts and the root come from the ``Vote`` rows, not the shards: the seal
    commits to what anyone can recount from the board.
    """
    with transaction.atomic():
        locks.ballot_exclusive(ballot.pk)
        # Lock order of every writer that touches both: mediation row, then room rows
        # (``ballot_open``, ``rooms.services.mediation_close``). An accepted seal closes
        # the mediation, so it takes the mediation row first, not after the log append.
        Mediation.objects.select_for_update().filter(pk=ballot.mediation_id).first()
        sealed_at = timezone.now()
        won = Ballot.objects.filter(pk=ballot.pk, sealed_at__isnull=True).update(
            sealed_at=sealed_at, seal_reason=reason
        )
        if not won:
            return None
        ballot = Ballot.objects.select_related("offer").get(pk=ballot.pk)
        votes = sorted(Vote.objects.filter(ballot_id=ballot.pk).values_list("commitment", "choice"))
        accept = sum(1 for _leaf, choice in votes if choice == Choice.ACCEPT)
        refuse = len(votes) - accept
        outcome = rule.outcome_at_seal(accept, ballot.eligible, ballot.threshold_bp)
        root = merkle.merkle_root(leaf for leaf, _choice in votes)
        document = seal_document(ballot=ballot, accept=accept, refuse=refuse, outcome=outcome, root=root)
        signature, key_id = signing.sign(document)
        # The final turnout reaches every member before the seal (PROTOCOL.md).
        broadcast.to_room(ballot.room_id, progress_frame(ballot_id=ballot.pk, voted=len(votes), eligible=ballot.eligible))
        frame = log.append(
            room_id=ballot.room_id,
            type=frames.BALLOT_SEALED,
            data={
                "ballot_id": str(ballot.pk),
                "outcome": outcome,
                "accept": accept,
                "refuse": refuse,
                "eligible": ballot.eligible,
                "threshold": ballot.threshold,
                "merkle_root": root,
                "signature": signature,
                "key_id": key_id,
            },
        )
        Ballot.objects.filter(pk=ballot.pk).update(
            outcome=outcome,
            accept=accept,
            refuse=refuse,
            merkle_root=root,
            document=document,
            signature=signature,
            key_id=key_id,
            sealed_seq=frame["seq"],
        )
        broadcast.to_room(ballot.room_id, frame)
        if outcome == rule.ACCEPTED:
            _agreement_record(ballot=ballot, signature=signature, key_id=key_id, root=root)
    return frame


def seal_document(*, ballot: Ballot, accept: int, refuse: int, outcome: str, root: str) -> dict:
    """Exactly the fields of PROTOCOL.md, nothing else: this is what is signed."""
    return {
        "version": SEAL_DOCUMENT_VERSION,
        "mediation_id": str(ballot.mediation_id),
        "ballot_id": str(ballot.pk),
        "offer_id": str(ballot.offer_id),
        "offer_hash": ballot.offer.offer_hash,
        "eligible": ballot.eligible,
        "electorate_hash": ballot.electorate_hash,
        "accept": accept,
        "refuse": refuse,
        "threshold": ballot.threshold,
        "outcome": outcome,
        "opened_at": log.iso(ballot.opened_at),
        "sealed_at": log.iso(ballot.sealed_at),
        "merkle_root": root,
    }


def _agreement_record(*, ballot: Ballot, signature: str, key_id: str, root: str) -> None:
    """An accepted offer is the mediation's agreement (issue 6, item 9): recorded on the
    mediation, told live to the plenary room, and the mediation closes on it."""
    Mediation.objects.filter(pk=ballot.mediation_id).update(outcome=Outcome.AGREEMENT)
    frame = log.append(
        room_id=ballot.room_id,
        type=frames.AGREEMENT_RECORDED,
        data={
            "offer_id": str(ballot.offer_id),
            "ballot_id": str(ballot.pk),
            "merkle_root": root,
            "signature": signature,
            "key_id": key_id,
        },
    )
    broadcast.to_room(ballot.room_id, frame)
    mediation = Mediation.objects.get(pk=ballot.mediation_id)
    room_services.mediation_close(mediation=mediation, reason="agreement", outcome=Outcome.AGREEMENT)


# --- turnout ---------------------------------------------------------------------------------


def progress_frame(*, ballot_id, voted: int, eligible: int) -> dict:
    return {"type": frames.BALLOT_PROGRESS, "ballot_id": str(ballot_id), "voted": voted, "eligible": eligible}


def ballot_progress_publish(*, ballot_id) -> bool:
    """Broadcasts the current turnout of an open ballot to its room, unless another
    process did in this time slot; returns False then (the caller tries the next slot,
    so the latest votes always show). With the hub's coalescing in each process, that
    makes at most one ``ballot.progress`` per ``PALABRE_PROGRESS_INTERVAL_S`` per ballot
    across all processes, whatever the number of votes.

    Sent while holding the ballot lock shared: the seal (exclusive) can't commit, and so
    can't send its final turnout and ``ballot.sealed``, until this frame is on the
    channel layer, so a stale turnout never follows the seal."""
    interval = settings.PALABRE_PROGRESS_INTERVAL_S
    slot = int(time.time() / interval)
    with transaction.atomic():
        locks.ballot_shared(ballot_id)
        ballot = Ballot.objects.filter(pk=ballot_id).values("room_id", "eligible", "sealed_at").first()
        if ballot is None or ballot["sealed_at"] is not None:
            return True  # the seal sent the final turnout
        try:
            won = cache.add(f"palabre.ballot-progress.{ballot_id}.{slot}", 1, timeout=math.ceil(interval) + 1)
        except Exception:  # noqa: BLE001 - no shared cache: this process sends its own
            won = True
        if not won:
            return False
        accept, refuse = running_counts(ballot_id)
        frame = progress_frame(ballot_id=ballot_id, voted=accept + refuse, eligible=ballot["eligible"])
        broadcast.to_room_now(ballot["room_id"], frame)
    return True


# --- after the seal: erasing what could pair an elector with a vote --------------------------


def ballot_scrub(*, ballot_id) -> bool:
    """Rewrites a sealed ballot's vote rows and its voters' elector rows, once; returns
    whether it did.

    While a ballot is open, a vote row and its voter's ``has_voted`` are written by one
    transaction: on PostgreSQL both carry its id (``xmin``), and vote rows lie in the
    order they were cast (heap order; SQLite's rowid). Rewriting every vote in commitment
    order and every voter's elector row in one transaction leaves the live tables with
    that one transaction id and the board's order, which is public. (The dead row
    versions go with the next VACUUM.)

    Run by the worker after the seal, not inside it: at 150,000 votes it takes seconds,
    which the seal would otherwise spend holding the ballot lock (every late cast and
    turnout frame waiting on it) and the last voter would spend waiting for a receipt.
    Sealed votes never change, so nothing else needs to wait for it."""
    with transaction.atomic():
        claimed = Ballot.objects.filter(pk=ballot_id, sealed_at__isnull=False, scrubbed_at__isnull=True).update(
            scrubbed_at=timezone.now()
        )
        if not claimed:
            return False
        table = Vote._meta.db_table
        if connection.vendor == "postgresql":
            # One statement: the rows come back out of the DELETE and go in sorted.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"WITH gone AS (DELETE FROM {table} WHERE ballot_id = %s RETURNING commitment, ballot_id, choice) "
                    f"INSERT INTO {table} (commitment, ballot_id, choice) "
                    "SELECT commitment, ballot_id, choice FROM gone ORDER BY commitment",
                    [ballot_id],
                )
        else:
            votes = sorted(Vote.objects.filter(ballot_id=ballot_id).values_list("commitment", "choice"))
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE ballot_id = %s", [ballot_id])
            Vote.objects.bulk_create(
                (Vote(commitment=leaf, ballot_id=ballot_id, choice=choice) for leaf, choice in votes),
                batch_size=5000,
            )
        # The electors who didn't vote were last written at the opening: nothing to erase.
        Elector.objects.filter(ballot_id=ballot_id, has_voted=True).update(has_voted=True)
        Tally.objects.filter(ballot_id=ballot_id).update(accept=F("accept"))
    return True


def ballots_scrub_sealed(now: datetime | None = None) -> int:
    return sum(
        ballot_scrub(ballot_id=pk)
        for pk in Ballot.objects.filter(sealed_at__isnull=False, scrubbed_at__isnull=True).values_list("pk", flat=True)
    )


# --- the worker's pass -----------------------------------------------------------------------


def ballots_seal_due(now: datetime | None = None) -> int:
    """Seals the ballots past their deadline, and any whose outcome is certain but were
    left unsealed (a process that died between a vote's commit and its seal)."""
    now = now or timezone.now()
    sealed = 0
    for ballot in Ballot.objects.filter(sealed_at__isnull=True, closes_at__lte=now):
        sealed += ballot_seal(ballot=ballot, reason=SealReason.DEADLINE) is not None
    for ballot in Ballot.objects.filter(sealed_at__isnull=True, closes_at__gt=now):
        sealed += seal_if_certain(ballot=ballot) is not None
    return sealed
