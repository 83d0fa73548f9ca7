"""The record of agreement (issue 10, item 4): a PDF when a ballot seals accepted, its
SHA-256 in the plenary log, downloadable by every admitted member, encrypted at rest."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ballots import services as ballot_services
from rooms import record, services
from rooms.models import AgreementRecord, Event, Mediation, MemberStatus, Role
from tests.ballots.conftest import cast, open_ballot, submit_offer
from tests.registration.conftest import logged_in

pytestmark = pytest.mark.django_db

TERMS = "Abonnix rembourse 42 € à chaque abonné « sans condition » et arrête les prélèvements."


def pdf_text(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return " ".join(out.stdout.decode("utf-8").split())


@pytest.fixture
def accepted(mediation, plenary, mediator, company, consumers):
    Mediation.objects.filter(pk=mediation.pk).update(objective="Le remboursement des frais prélevés.")
    voters = consumers(5)
    offer = submit_offer(company, plenary, title="Remboursement intégral", terms=TERMS, amount_cents=4200)
    ballot = open_ballot(mediator, offer, closes_at=timezone.now() + timedelta(hours=2))
    for voter in voters[:3]:
        cast(voter, ballot, "accept")
    cast(voters[3], ballot, "refuse")
    cast(voters[4], ballot, "accept")
    ballot.refresh_from_db()
    assert ballot.outcome == "accepted"
    return ballot


def download(user, ballot):
    return logged_in(user).get(f"/api/v1/ballots/{ballot.pk}/record.pdf")


def test_the_worker_makes_the_record_once_and_logs_its_hash(accepted, plenary, consumers):
    assert record.agreement_records_due() == 1
    assert record.agreement_records_due() == 0
    made = AgreementRecord.objects.get()
    event = Event.objects.get(room=plenary, type="agreement.record")
    assert event.seq == made.seq
    assert event.data == {
        "ballot_id": str(accepted.pk),
        "sha256": made.sha256,
        "size": made.size,
        "url": f"/api/v1/ballots/{accepted.pk}/record.pdf",
    }
    frame = services.events_page(room=plenary, after_seq=event.seq - 1, limit=1)[0][0]
    assert frame == {"type": "agreement.record", "seq": event.seq, "at": frame["at"], **event.data}


def test_every_admitted_member_downloads_the_same_file(accepted, mediator, company, make_member, mediation, outsider):
    record.agreement_records_due()
    made = AgreementRecord.objects.get()
    consumer = make_member(mediation, Role.CONSUMER)
    bodies = set()
    for member in (mediator, company, consumer):
        response = download(member.user, accepted)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response["X-Content-SHA256"] == made.sha256
        assert hashlib.sha256(response.content).hexdigest() == made.sha256
        bodies.add(response.content)
    assert len(bodies) == 1 and next(iter(bodies)).startswith(b"%PDF-")
    pending = make_member(mediation, Role.CONSUMER, status=MemberStatus.PENDING)
    for someone in (pending.user, outsider):
        assert download(someone, accepted).status_code == 403
    assert download(None, accepted).status_code == 401
    assert download(consumer.user, type("B", (), {"pk": 999999})).status_code == 404


def test_the_record_says_what_was_agreed_and_how_to_verify_it(accepted, mediation, mediator):
    text = pdf_text(download(mediator.user, accepted).content)
    for expected in (
        "Procès-verbal d’accord",
        "Frais cachés",
        "Abonnix SA",
        "Le remboursement des frais prélevés.",
        mediator.display_name,
        "Remboursement intégral",
        "42 € à chaque abonné « sans condition »",
        "42,00 €",
        "75 % des consommateurs admis, soit 4 acceptations sur 5",
        accepted.merkle_root,
        accepted.key_id,
        "python manage.py verify_seal",
        f"/api/v1/ballots/{accepted.pk}/board",
        "agreement.record",
    ):
        assert expected in text, expected
    # Counts: 4 accept, 1 refuse, 0 did not vote, of 5.
    assert "Accepter 4" in text and "Refuser 1" in text and "N’ont pas voté 0" in text
    # The signature is printed whole (wrapped: compare without the line breaks).
    assert accepted.signature in text.replace(" ", "")


def test_the_record_is_reproducible_and_encrypted_at_rest(accepted):
    assert record.render_pdf(accepted) == record.render_pdf(accepted)
    record.agreement_records_due()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT content FROM {AgreementRecord._meta.db_table}")
        (raw,) = cursor.fetchone()
    assert b"%PDF" not in bytes(raw) and bytes(raw)[0] == 1


def test_the_first_download_makes_it_if_the_worker_is_behind(accepted, mediator):
    assert not AgreementRecord.objects.exists()
    response = download(mediator.user, accepted)
    assert response.status_code == 200
    assert AgreementRecord.objects.get().sha256 == hashlib.sha256(response.content).hexdigest()
    assert record.agreement_records_due() == 0


def test_a_rejected_ballot_has_no_record(mediation, plenary, mediator, company, consumers):
    consumers(2)
    ballot = open_ballot(mediator, submit_offer(company, plenary))
    ballot_services.ballot_close(ballot=ballot)
    assert record.agreement_records_due() == 0
    response = download(mediator.user, ballot)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_a_shredded_record_is_gone_but_its_hash_stays_in_the_log(accepted, mediation, mediator, plenary):
    record.agreement_records_due()
    services.mediation_shred(mediation=mediation)
    response = download(mediator.user, accepted)
    assert (response.status_code, response.json()["error"]["code"]) == (410, "gone")
    assert Event.objects.filter(room=plenary, type="agreement.record").exists()
