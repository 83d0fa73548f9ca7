"""Email notices (issue 10, item 3): enqueued by services and the worker's passes, sent by
the worker only, once each, retried on failure, in the recipient's language, never to
someone who turned them off; "has not voted" read from the electors, never the votes."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import formats, timezone, translation

from ballots import services as ballot_services
from rooms import notices
from rooms.models import Mediation, Membership, MemberStatus, Notice, NoticeState, Role
from rooms.registrations import registrations_decide
from tests.ballots.conftest import cast, open_ballot, submit_offer

pytestmark = pytest.mark.django_db


def with_email(member: Membership, language="fr") -> Membership:
    member.user.email = f"{member.user.username}@example.org"
    member.user.save(update_fields=["email"])
    Membership.objects.filter(pk=member.pk).update(language=language)
    member.language = language
    return member


def by_recipient() -> dict[str, mail.EmailMessage]:
    return {m.to[0]: m for m in mail.outbox}


@pytest.fixture
def applicants(mediation, make_member):
    return [
        with_email(make_member(mediation, Role.CONSUMER, status=MemberStatus.PENDING), language)
        for language in ("fr", "en", "fr", "en")
    ]


def test_admission_and_refusal_in_both_languages_sent_by_the_worker_once(mailoutbox, mediation, mediator, applicants):
    fr_admitted, en_admitted, fr_refused, en_refused = applicants
    registrations_decide(
        mediator=mediator,
        decisions=[
            (fr_admitted.pk, "admit", ""),
            (en_admitted.pk, "admit", ""),
            (fr_refused.pk, "refuse", "Votre contrat date d'après 2024."),
            (en_refused.pk, "refuse", "Your contract is not with Abonnix."),
        ],
    )
    assert mail.outbox == []  # nothing leaves from the request's service
    assert notices.notices_send_due() == 4
    sent = by_recipient()

    english = sent[en_admitted.user.email]
    assert english.subject == "You are admitted to the mediation “Frais cachés”"
    assert "Hello Consumer" in english.body
    assert "The mediator has admitted you to the mediation “Frais cachés” with Abonnix SA." in english.body
    assert f"http://127.0.0.1:8000/mediations/{mediation.pk}/" in english.body
    assert f"http://127.0.0.1:8000/mediations/{mediation.pk}/about/" in english.body

    french = sent[fr_admitted.user.email]
    assert french.subject == "Vous êtes admis à la médiation « Frais cachés »"
    assert "Bonjour Consumer" in french.body
    assert "Le médiateur vous a admis à la médiation « Frais cachés » avec Abonnix SA." in french.body
    assert "&" not in french.body and "&#x27;" not in french.body  # plain text, not escaped HTML

    refused_fr = sent[fr_refused.user.email]
    assert refused_fr.subject == "Votre inscription à la médiation « Frais cachés »"
    assert "Le motif du médiateur :\nVotre contrat date d'après 2024." in refused_fr.body
    refused_en = sent[en_refused.user.email]
    assert "The mediator's reason:\nYour contract is not with Abonnix." in refused_en.body
    assert all(m.from_email == "Palabre <noreply@127.0.0.1>" for m in mail.outbox)

    # Each notice once: the next passes find nothing to send.
    assert notices.notices_send_due() == 0
    assert len(mail.outbox) == 4
    assert set(Notice.objects.values_list("state", flat=True)) == {NoticeState.SENT}


def test_notices_turned_off_or_without_an_address_are_not_sent(mailoutbox, mediation, mediator, applicants, make_member):
    quiet = applicants[0]
    Membership.objects.filter(pk=quiet.pk).update(notices_enabled=False)
    nameless = make_member(mediation, Role.CONSUMER, status=MemberStatus.PENDING)
    registrations_decide(mediator=mediator, decisions=[(quiet.pk, "admit", ""), (nameless.pk, "admit", ""), (applicants[1].pk, "admit", "")])
    assert notices.notices_send_due() == 1
    assert [m.to for m in mail.outbox] == [[applicants[1].user.email]]
    skipped = dict(Notice.objects.filter(state=NoticeState.SKIPPED).values_list("membership_id", "last_error"))
    assert skipped == {quiet.pk: "notices turned off", nameless.pk: "no email address"}


class FailingBackend(BaseEmailBackend):
    """An SMTP server that refuses the addresses in ``refused`` (all, when empty)."""

    refused: set[str] = set()

    def send_messages(self, messages):
        for message in messages:
            if not self.refused or message.to[0] in self.refused:
                raise OSError("451 try again later")
        mail.outbox.extend(messages)
        return len(messages)


class UnreachableBackend(BaseEmailBackend):
    def open(self):
        raise ConnectionRefusedError("connection refused")

    def send_messages(self, messages):  # pragma: no cover - never reached
        raise AssertionError


def test_a_failed_notice_is_retried_later_until_sent(mailoutbox, settings, mediation, mediator, applicants):
    registrations_decide(mediator=mediator, decisions=[(applicants[0].pk, "admit", "")])
    settings.EMAIL_BACKEND = "tests.registration.test_notices.UnreachableBackend"
    now = timezone.now()
    assert notices.notices_send_due(now) == 0
    notice = Notice.objects.get()
    assert (notice.state, notice.attempts, notice.last_error) == ("pending", 1, "connection refused")
    assert notice.next_attempt_at == now + timedelta(minutes=1)
    assert notices.notices_send_due(now + timedelta(seconds=59)) == 0  # not due yet
    settings.EMAIL_BACKEND = "tests.registration.test_notices.FailingBackend"
    FailingBackend.refused = set()
    assert notices.notices_send_due(now + timedelta(minutes=1)) == 0
    notice.refresh_from_db()
    assert (notice.attempts, notice.last_error) == (2, "451 try again later")
    assert notice.next_attempt_at == now + timedelta(minutes=1) + timedelta(minutes=2)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert notices.notices_send_due(now + timedelta(minutes=3)) == 1
    notice.refresh_from_db()
    assert notice.state == "sent" and notice.sent_at is not None
    assert len(mail.outbox) == 1


def test_one_refused_address_does_not_hold_back_the_others(mailoutbox, settings, mediation, mediator, applicants):
    registrations_decide(mediator=mediator, decisions=[(m.pk, "admit", "") for m in applicants])
    settings.EMAIL_BACKEND = "tests.registration.test_notices.FailingBackend"
    FailingBackend.refused = {applicants[2].user.email}
    assert notices.notices_send_due() == 3
    assert sorted(m.to[0] for m in mail.outbox) == sorted(a.user.email for a in applicants if a is not applicants[2])
    assert Notice.objects.get(membership=applicants[2]).state == "pending"


def test_a_notice_that_keeps_failing_is_given_up(mailoutbox, settings, mediation, mediator, applicants):
    settings.PALABRE_NOTICE_MAX_ATTEMPTS = 3
    settings.EMAIL_BACKEND = "tests.registration.test_notices.UnreachableBackend"
    registrations_decide(mediator=mediator, decisions=[(applicants[0].pk, "admit", "")])
    later = timezone.now()
    for _ in range(3):
        notices.notices_send_due(later)
        later += timedelta(hours=7)
    notice = Notice.objects.get()
    assert (notice.state, notice.attempts) == ("failed", 3)
    assert notices.notices_send_due(later) == 0


def test_a_batch_is_bounded(mailoutbox, settings, mediation, mediator, applicants):
    settings.PALABRE_NOTICE_BATCH = 3
    registrations_decide(mediator=mediator, decisions=[(m.pk, "admit", "") for m in applicants])
    assert notices.notices_send_due() == 3
    assert notices.notices_send_due() == 1


# --- ballots ---------------------------------------------------------------------------------


@pytest.fixture
def electors(mediation, make_member):
    # Ballots of several days need a mediation that lasts longer than the fixture's day.
    Mediation.objects.filter(pk=mediation.pk).update(closes_at=timezone.now() + timedelta(days=10))
    return [with_email(make_member(mediation, Role.CONSUMER), language) for language in ("fr", "en", "fr", "en")]


def test_a_ballot_opening_is_told_to_its_electors_with_its_deadline(mailoutbox, mediation, plenary, mediator, company, electors, make_member):
    late = with_email(make_member(mediation, Role.CONSUMER, status=MemberStatus.PENDING))
    closes_at = timezone.now().replace(microsecond=0) + timedelta(hours=20)
    ballot = open_ballot(mediator, submit_offer(company, plenary), closes_at=closes_at)
    assert mail.outbox == []
    assert notices.notices_enqueue_due() == 4
    assert notices.notices_enqueue_due() == 0  # once per ballot
    assert notices.notices_send_due() == 4
    sent = by_recipient()
    assert late.user.email not in sent
    local = timezone.localtime(closes_at)
    english = sent[electors[1].user.email]
    assert english.subject == "A vote is open in the mediation “Frais cachés”"
    with translation.override("en"):
        assert f"The vote closes on {formats.date_format(local, 'DATETIME_FORMAT')} (Paris time)." in english.body
    assert "at least 75 % of the admitted consumers" in english.body
    french = sent[electors[0].user.email]
    assert french.subject == "Un vote est ouvert dans la médiation « Frais cachés »"
    months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"]
    assert f"Le vote se termine le {local.day} {months[local.month - 1]} {local.year} {local:%H:%M} (heure de Paris)." in french.body
    assert "Le médiateur a ouvert un vote sur une offre de l’entreprise Abonnix SA." in french.body
    assert "ne pas voter compte comme ne pas accepter" in french.body
    assert ballot.pk  # the reminder of a ballot shorter than a day is its opening notice
    assert notices.notices_enqueue_due(closes_at - timedelta(hours=1)) == 0


def test_a_day_before_the_deadline_only_those_who_have_not_voted_are_reminded(mailoutbox, mediation, plenary, mediator, company, electors):
    closes_at = timezone.now() + timedelta(days=3)
    ballot = open_ballot(mediator, submit_offer(company, plenary), closes_at=closes_at)
    notices.notices_enqueue_due()
    notices.notices_send_due()
    mail.outbox.clear()
    cast(electors[0], ballot, "accept")
    assert notices.notices_enqueue_due(closes_at - timedelta(days=1, seconds=1)) == 0  # not yet
    day_before = closes_at - timedelta(hours=23)
    with CaptureQueriesContext(connection) as enqueuing:
        assert notices.notices_enqueue_due(day_before) == 3
    cast(electors[1], ballot, "refuse")  # votes after the reminder was queued, before it left
    with CaptureQueriesContext(connection) as sending:
        assert notices.notices_send_due(day_before) == 2
    assert sorted(m.to[0] for m in mail.outbox) == sorted(e.user.email for e in electors[2:])
    # Who has voted comes from the electors; what was voted is never read.
    queries = [q["sql"] for q in enqueuing.captured_queries + sending.captured_queries]
    assert any("ballots_elector" in sql for sql in queries)
    assert not any("ballots_vote" in sql for sql in queries)
    reminder = by_recipient()[electors[2].user.email]
    assert reminder.subject == "Le vote se termine dans moins d'un jour : « Frais cachés »"
    assert "Vous n'avez pas encore voté" in reminder.body
    assert Notice.objects.get(membership=electors[1], kind="ballot_reminder").last_error == "already voted"


def test_the_seal_is_told_to_every_admitted_consumer(mailoutbox, mediation, plenary, mediator, company, electors, make_member):
    ballot = open_ballot(mediator, submit_offer(company, plenary), closes_at=timezone.now() + timedelta(days=2))
    newcomer = with_email(make_member(mediation, Role.CONSUMER), "en")  # admitted after the opening
    for member in electors[:3]:
        cast(member, ballot, "accept")
    ballot.refresh_from_db()
    assert ballot.outcome == "accepted"
    out = io.StringIO()
    call_command("run_deadlines", "--once", stdout=out)
    assert "notices_enqueue_due=" in out.getvalue() and "notices_send_due=" in out.getvalue()
    sealed = [m for m in mail.outbox if "accept" in m.subject.lower()]
    assert sorted(m.to[0] for m in sealed) == sorted(m.user.email for m in [*electors, newcomer])
    english = by_recipient()[newcomer.user.email]
    assert english.subject == "The offer is accepted: “Frais cachés”"
    assert "Accept: 3. Refuse: 0. Admitted consumers: 4" in english.body
    assert f"http://127.0.0.1:8000/api/v1/ballots/{ballot.pk}/record.pdf" in english.body
    french = [m for m in sealed if m.to[0] == electors[0].user.email][0]
    assert french.subject == "L'offre est acceptée : « Frais cachés »"
    assert "Accepter : 3. Refuser : 0." in french.body
    # No opening notice for a ballot the worker first saw sealed.
    assert not Notice.objects.filter(kind="ballot_opened").exists()


def test_a_rejected_seal_says_so(mailoutbox, mediation, plenary, mediator, company, electors):
    ballot = open_ballot(mediator, submit_offer(company, plenary))
    ballot_services.ballot_close(ballot=ballot)
    notices.notices_enqueue_due()
    notices.notices_send_due()
    sealed = by_recipient()[electors[1].user.email]
    assert sealed.subject == "The offer is not accepted: “Frais cachés”"
    assert "record.pdf" not in sealed.body
