"""The consumer's page of a mediation (issue 10, item 5): objective, dates, the rule in
plain words, every offer and result so far; French and English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from rooms import record
from rooms.models import Mediation, Membership, MemberStatus, Phase, Registration, Role
from rooms.registrations import registrations_decide
from tests.ballots.conftest import cast, open_ballot, submit_offer
from tests.registration.conftest import logged_in

pytestmark = pytest.mark.django_db


def page(user, mediation, language="fr"):
    client = logged_in(user)
    return client.get(f"/mediations/{mediation.pk}/about/", HTTP_ACCEPT_LANGUAGE=language)


def text(response) -> str:
    return " ".join(response.content.decode().split())


@pytest.fixture
def objective(mediation):
    Mediation.objects.filter(pk=mediation.pk).update(
        objective="Le remboursement des frais prélevés.", closes_at=timezone.now() + timedelta(days=10)
    )
    mediation.refresh_from_db()
    return mediation


def test_anyone_reads_the_facts_and_the_rule_in_plain_words(objective, consumers):
    consumers(10)
    french = page(None, objective)
    assert french.status_code == 200
    body = text(french)
    assert "Frais cachés" in body and "Abonnix SA" in body
    assert "Le remboursement des frais prélevés." in body
    assert "l’offre est acceptée si au moins 75 % des consommateurs admis l’acceptent ; ne pas voter compte comme ne pas accepter" in body.lower()
    assert "Avec 10 consommateurs admis aujourd’hui, il faut 8 acceptations." in body
    assert "Les offres et les résultats sont montrés aux membres admis de la médiation." in body
    english = text(page(None, objective, "en"))
    assert "The offer is accepted if at least 75 % of the admitted consumers accept it; not voting counts as not accepting." in english
    assert "With 10 consumers admitted today, that takes 8 acceptances." in english


def test_the_threshold_in_words_follows_the_mediation(make_mediation, make_member):
    two_thirds = make_mediation(threshold_bp=6667)
    for _ in range(3):
        make_member(two_thirds, Role.CONSUMER)
    body = text(page(None, two_thirds))
    assert "au moins 66,67 % des consommateurs admis" in body
    assert "il faut 3 acceptations" in body  # 66.67 % of 3 is 2.0001: ceil gives 3
    assert "at least 66.67 % of the admitted consumers" in text(page(None, two_thirds, "en"))


def test_members_see_every_offer_and_result(objective, plenary, mediator, company, consumers, make_member):
    voters = consumers(4)
    first = submit_offer(company, plenary, title="Remboursement de 50 %", terms="La moitié des frais.", amount_cents=2100)
    rejected = open_ballot(mediator, first)
    cast(voters[0], rejected, "refuse")
    cast(voters[1], rejected, "refuse")
    rejected.refresh_from_db()
    assert rejected.outcome == "rejected"
    second = submit_offer(company, plenary, title="Remboursement intégral", terms="Tous les frais.", amount_cents=4200)
    open_now = open_ballot(mediator, second, closes_at=timezone.now() + timedelta(days=2))
    cast(voters[0], open_now, "accept")

    body = text(page(voters[2].user, objective))
    assert "Remboursement de 50 %" in body and "La moitié des frais." in body and "21,00 €" in body
    assert "Non acceptée." in body
    assert "<dt>Accepter</dt><dd>0</dd> <dt>Refuser</dt><dd>2</dd> <dt>N’ont pas voté</dt><dd>2</dd>" in body
    assert rejected.merkle_root in body.replace("<wbr>", "")
    assert "Remboursement intégral" in body and "42,00 €" in body
    assert "1 sur 4 ont voté" in body
    assert "3 acceptations sur 4 (75 %)" in body

    for voter in voters[1:3]:
        cast(voter, open_now, "accept")
    record.agreement_records_due()
    body = text(page(company.user, objective, "en"))
    assert "Accepted." in body
    assert f"/api/v1/ballots/{open_now.pk}/record.pdf" in body
    made = record.AgreementRecord.objects.get()
    assert made.sha256 in body.replace("<wbr>", "")
    # The page of a mediation closed on its agreement stays readable.
    assert Mediation.objects.get(pk=objective.pk).phase == Phase.CLOSED
    assert page(None, objective).status_code == 200


def test_offers_are_for_admitted_members_only(objective, plenary, company, make_member, outsider):
    submit_offer(company, plenary, title="Offre confidentielle", terms="Secret.")
    pending = make_member(objective, Role.CONSUMER, status=MemberStatus.PENDING)
    for someone in (None, outsider, pending.user):
        body = text(page(someone, objective))
        assert "Offre confidentielle" not in body and "Secret." not in body
    assert "Offre confidentielle" in text(page(company.user, objective))


def test_a_refused_consumer_reads_the_reason_and_a_draft_is_for_members(objective, mediator, make_member, make_mediation):
    refused = make_member(objective, Role.CONSUMER, status=MemberStatus.PENDING)
    Registration.objects.create(membership=refused)
    registrations_decide(mediator=mediator, decisions=[(refused.pk, "refuse", "Contrat hors période.")])
    body = text(page(refused.user, objective))
    assert "Contrat hors période." in body and "refusé" in body
    draft = make_mediation(phase=Phase.DRAFT)
    assert page(None, draft).status_code == 404
    assert page(make_member(draft, Role.MEDIATOR).user, draft).status_code == 200
    assert logged_in(None).get("/mediations/987654/about/").status_code == 404


def test_a_member_turns_notices_off_on_the_page(objective, consumer, outsider):
    client = logged_in(consumer.user)
    response = client.post(f"/mediations/{objective.pk}/about/", {"language": "en"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    stored = Membership.objects.get(pk=consumer.pk)
    assert (stored.notices_enabled, stored.language) == (False, "en")
    assert "Your notice settings are saved." in text(client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en"))
    client.post(f"/mediations/{objective.pk}/about/", {"notices": "on", "language": "fr"})
    stored.refresh_from_db()
    assert (stored.notices_enabled, stored.language) == (True, "fr")
    stranger = logged_in(outsider).post(f"/mediations/{objective.pk}/about/", {"notices": "on"})
    assert stranger.status_code == 302
    assert logged_in(consumer.user).put(f"/mediations/{objective.pk}/about/").status_code == 405


def test_the_page_needs_csrf_to_post(objective, consumer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(consumer.user)
    assert client.post(f"/mediations/{objective.pk}/about/", {"notices": "on"}).status_code == 403
