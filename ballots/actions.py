"""Ballot frames of the room socket → ballot services (``rooms.actions`` registry).

Each handler reads its fields, runs the ``check_*`` step then the write, and returns
the direct answers to the sender; broadcasts are the services' business.
"""

from __future__ import annotations

from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from ballots import services
from rooms import frames, validate
from rooms.actions import BatchItem, Conn, ack, action, after_action, batched_action
from rooms.errors import ActionError, speaking
from rooms.frames import Code
from rooms.hub import get_hub

MAX_DURATION_S = 366 * 24 * 3600


@action(frames.OFFER_SUBMIT)
def offer_submit(conn: Conn, frame: dict, ref) -> list[dict]:
    title = validate.string(frame, "title", max_len=services.TITLE_MAX_CHARS)
    terms = validate.string(frame, "terms", max_len=services.TERMS_MAX_CHARS)
    amount_cents = validate.integer(frame, "amount_cents", min_value=0, required=False)
    actor = services.check_offer_submit(member_id=conn.member_id, room_id=conn.room_id)
    event = services.offer_submit(
        member=actor.member, room_id=actor.room.pk, title=title, terms=terms, amount_cents=amount_cents
    )
    return [ack(ref, event)]


@action(frames.BALLOT_OPEN)
def ballot_open(conn: Conn, frame: dict, ref) -> list[dict]:
    offer_id = validate.identifier(frame, "offer_id")
    closes_at = validate.timestamp(frame, "closes_at")
    duration_s = validate.integer(frame, "duration_s", min_value=1, max_value=MAX_DURATION_S, required=False)
    if (closes_at is None) == (duration_s is None):
        raise ActionError(Code.BAD_REQUEST, _("Give either 'closes_at' or 'duration_s'."))
    actor, offer = services.check_ballot_open(member_id=conn.member_id, room_id=conn.room_id, offer_id=offer_id)
    if duration_s is not None:
        closes_at = timezone.now() + timedelta(seconds=duration_s)
    event = services.ballot_open(mediator=actor.member, offer=offer, closes_at=closes_at)
    return [ack(ref, event)]


@action(frames.BALLOT_CLOSE)
def ballot_close(conn: Conn, frame: dict, ref) -> list[dict]:
    ballot_id = validate.identifier(frame, "ballot_id")
    ballot = services.check_ballot_close(member_id=conn.member_id, room_id=conn.room_id, ballot_id=ballot_id)
    event = services.ballot_close(ballot=ballot)
    return [ack(ref, event)]


@batched_action(frames.VOTE_CAST)
def vote_cast_many(items: list[BatchItem]) -> list[list[dict] | ActionError]:
    results: list = [None] * len(items)
    casts, indexes = [], []
    for i, (conn, frame, _ref, language) in enumerate(items):
        try:
            with speaking(language):
                ballot_id = validate.identifier(frame, "ballot_id")
                choice = validate.string(frame, "choice", max_len=16)
        except ActionError as error:
            results[i] = error
            continue
        casts.append(services.Cast(conn.member_id, conn.room_id, ballot_id, choice, language))
        indexes.append(i)
    for i, cast in zip(indexes, services.votes_cast(casts), strict=True):
        if isinstance(cast, ActionError):
            results[i] = cast
            continue
        ballot, receipt = cast
        results[i] = [{"type": frames.VOTE_RECEIPT, "ref": items[i][2], "ballot_id": str(ballot.pk), "receipt": receipt}]
    return results


@after_action(frames.VOTE_CAST)
async def turnout_soon(conn: Conn, frame: dict, replies: list[dict]) -> None:
    schedule_progress(replies[0]["ballot_id"])


def schedule_progress(ballot_id: str) -> None:
    """One ``ballot.progress`` per interval for all the votes this process takes on a
    ballot (the hub folds the requests), never one per vote (DESIGN.md: 150,000 votes
    would be 22 billion frames)."""

    async def publish() -> None:
        sent = await database_sync_to_async(services.ballot_progress_publish)(ballot_id=ballot_id)
        if not sent:
            schedule_progress(ballot_id)  # another process had this slot: take the next

    get_hub().coalesce(f"ballot.progress.{ballot_id}", settings.PALABRE_PROGRESS_INTERVAL_S, publish)
