"""Email notices (issue 10, item 3): consumers are not always connected.

An outbox: services and the worker's passes write ``Notice`` rows (unique per member,
kind and subject, so enqueuing twice sends once); only the worker's pass
``notices_send_due`` sends them, never a request, in batches over one connection.
A notice that fails is retried later (exponential backoff), up to
``PALABRE_NOTICE_MAX_ATTEMPTS``; each is sent in its recipient's language.

Who is told:

* admitted or refused: the consumer decided (``rooms.registrations.registrations_decide``);
* a ballot opens, with its deadline: its electors;
* a day before it closes: its electors who have not voted yet, read from ``Elector``
  (who voted), never from ``Vote`` (what was voted), and read again when sending;
* it is sealed: the admitted consumers of the mediation.

Delivery is at least once: a worker that dies between the SMTP server's answer and its
commit sends that batch again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from rooms import record, registrations
from rooms.models import (
    Membership,
    MemberStatus,
    Notice,
    NoticeBatch,
    NoticeKind,
    NoticeState,
    Role,
)

logger = logging.getLogger("palabre.notices")

REMINDER_BEFORE = timedelta(days=1)
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=6)


# --- enqueuing ----------------------------------------------------------------------------------


def _enqueue(*, kind: str, subject_id: int, select_sql: str | None, params: list = (), now: datetime) -> int:
    """Inserts one pending notice per membership id that ``select_sql`` yields, in one
    statement (150,000 electors need no round trip each), and marks the batch done, in
    one transaction (``select_sql`` None: done, with nobody to tell). Members who turned
    notices off, or have no address, get none."""
    notice, membership = Notice._meta.db_table, Membership._meta.db_table
    user = get_user_model()._meta.db_table
    with transaction.atomic():
        _batch, created = NoticeBatch.objects.get_or_create(kind=kind, subject_id=subject_id)
        if not created or select_sql is None:
            return 0
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {notice} (membership_id, kind, subject_id, state, created_at, next_attempt_at, attempts, last_error) "
                f"SELECT m.id, %s, %s, %s, %s, %s, 0, '' FROM {membership} m JOIN {user} u ON u.id = m.user_id "
                f"WHERE m.id IN ({select_sql}) AND m.notices_enabled AND u.email <> '' "
                "ON CONFLICT DO NOTHING",
                [kind, subject_id, NoticeState.PENDING, *[connection.ops.adapt_datetimefield_value(now)] * 2, *params],
            )
            return cursor.rowcount


def notices_enqueue_due(now: datetime | None = None) -> int:
    """The worker's pass over ballots: the notices of each opening, reminder and seal,
    each enqueued once (``NoticeBatch``)."""
    from ballots.models import Ballot, Elector

    now = now or timezone.now()
    elector = Elector._meta.db_table
    membership = Membership._meta.db_table
    done = {
        kind: NoticeBatch.objects.filter(kind=kind).values("subject_id")
        for kind in (NoticeKind.BALLOT_OPENED, NoticeKind.BALLOT_REMINDER, NoticeKind.BALLOT_SEALED)
    }
    count = 0
    for ballot_id, sealed_at in Ballot.objects.exclude(pk__in=done[NoticeKind.BALLOT_OPENED]).values_list("pk", "sealed_at"):
        # Sealed before the worker saw it open: its seal is the news, not its opening.
        select = None if sealed_at else f"SELECT membership_id FROM {elector} WHERE ballot_id = %s"
        count += _enqueue(kind=NoticeKind.BALLOT_OPENED, subject_id=ballot_id, select_sql=select, params=[ballot_id], now=now)
    reminders = Ballot.objects.exclude(pk__in=done[NoticeKind.BALLOT_REMINDER]).filter(
        sealed_at__isnull=True, closes_at__gt=now, closes_at__lte=now + REMINDER_BEFORE
    )
    for ballot in reminders.only("pk", "opened_at", "closes_at"):
        # A ballot shorter than a day has its deadline in its opening notice already.
        lasting = ballot.closes_at - ballot.opened_at > REMINDER_BEFORE
        select = f"SELECT membership_id FROM {elector} WHERE ballot_id = %s AND has_voted = %s" if lasting else None
        count += _enqueue(kind=NoticeKind.BALLOT_REMINDER, subject_id=ballot.pk, select_sql=select, params=[ballot.pk, False], now=now)
    sealed = Ballot.objects.exclude(pk__in=done[NoticeKind.BALLOT_SEALED]).filter(sealed_at__isnull=False)
    for ballot_id, mediation_id in sealed.values_list("pk", "mediation_id"):
        select = f"SELECT id FROM {membership} WHERE mediation_id = %s AND role = %s AND status = %s"
        count += _enqueue(
            kind=NoticeKind.BALLOT_SEALED,
            subject_id=ballot_id,
            select_sql=select,
            params=[mediation_id, Role.CONSUMER, MemberStatus.ADMITTED],
            now=now,
        )
    return count


# --- sending ------------------------------------------------------------------------------------


def _still_due(notice: Notice) -> str:
    """Why a pending notice should no longer go out, or ''."""
    member = notice.membership
    if not member.notices_enabled:
        return "notices turned off"
    if not member.user.email:
        return "no email address"
    if notice.kind == NoticeKind.BALLOT_REMINDER:
        from ballots.models import Ballot, Elector

        ballot = Ballot.objects.filter(pk=notice.subject_id).values("sealed_at").first()
        if ballot is None or ballot["sealed_at"] is not None:
            return "ballot sealed"
        # Who voted, from the electors: never from the votes.
        if Elector.objects.filter(ballot_id=notice.subject_id, membership_id=member.pk, has_voted=True).exists():
            return "already voted"
    return ""


def _context(notice: Notice) -> dict:
    member = notice.membership
    mediation = member.mediation
    site = settings.PALABRE_SITE_URL
    context = {
        "member": member,
        "name": member.display_name,
        "mediation": mediation,
        "mediation_url": f"{site}/mediations/{mediation.pk}/",
        "about_url": f"{site}/mediations/{mediation.pk}/about/",
        "site": site,
    }
    if notice.kind == NoticeKind.REFUSED:

        context["reason"] = registrations.decision_reason(member)
    if notice.kind in (NoticeKind.BALLOT_OPENED, NoticeKind.BALLOT_REMINDER, NoticeKind.BALLOT_SEALED):
        from ballots.models import Ballot

        ballot = Ballot.objects.get(pk=notice.subject_id)
        context.update(
            ballot=ballot,
            threshold_percent=record.percent_number(ballot.threshold_bp),
            record_url=f"{site}/api/v1/ballots/{ballot.pk}/record.pdf",
        )
    return context


def render(notice: Notice) -> EmailMessage:
    """The notice as an email in its recipient's language."""
    template = f"rooms/mail/{notice.kind}"
    with translation.override(notice.membership.language):
        context = _context(notice)
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        body = render_to_string(f"{template}.txt", context)
    return EmailMessage(subject=subject, body=body, to=[notice.membership.user.email])


def _retry(notice: Notice, error: str, now: datetime) -> None:
    notice.attempts += 1
    notice.last_error = error[:500]
    if notice.attempts >= settings.PALABRE_NOTICE_MAX_ATTEMPTS:
        notice.state = NoticeState.FAILED
        logger.error("notice %s failed %d times, given up: %s", notice.pk, notice.attempts, error)
    else:
        notice.next_attempt_at = now + min(RETRY_MAX, RETRY_FIRST * 2 ** (notice.attempts - 1))


def notices_send_due(now: datetime | None = None) -> int:
    """The worker's pass: sends up to ``PALABRE_NOTICE_BATCH`` due notices over one
    connection; returns how many went out. The batch's rows stay locked until they are
    marked (``skip_locked``: a second worker takes the next ones, not these)."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = list(
            Notice.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=NoticeState.PENDING, next_attempt_at__lte=now)
            .select_related("membership__user", "membership__mediation")
            .order_by("next_attempt_at", "pk")[: settings.PALABRE_NOTICE_BATCH]
        )
        if not batch:
            return 0
        outgoing = []
        for notice in batch:
            skip = _still_due(notice)
            if skip:
                notice.state, notice.last_error = NoticeState.SKIPPED, skip
                continue
            try:
                outgoing.append((notice, render(notice)))
            except Exception as error:  # noqa: BLE001 - one notice that can't render must not block the rest
                logger.exception("notice %s does not render", notice.pk)
                _retry(notice, f"render: {error}", now)
        sent, tried = 0, set()
        if outgoing:
            try:
                with get_connection() as mail:
                    for notice, message in outgoing:
                        tried.add(notice.pk)
                        try:
                            mail.send_messages([message])
                        except Exception as error:  # noqa: BLE001 - this one is retried, the others go on
                            logger.warning("notice %s not sent: %s", notice.pk, error)
                            _retry(notice, str(error) or type(error).__name__, now)
                            continue
                        notice.state, notice.sent_at = NoticeState.SENT, timezone.now()
                        sent += 1
            except Exception as error:  # noqa: BLE001 - the server is unreachable: the untried are retried
                logger.warning("mail server unreachable: %s", error)
                for notice, _message in outgoing:
                    if notice.pk not in tried:
                        _retry(notice, str(error) or type(error).__name__, now)
        Notice.objects.bulk_update(batch, ["state", "attempts", "next_attempt_at", "sent_at", "last_error"])
    return sent
