"""A whole mediation played in four browsers: the mediator, the company and two consumers
(one on a phone in French, one in English) talk, the company makes offers, the mediator
opens ballots, the consumers vote, and every page shows the sealed result and checks it
(signature, board, receipt) with WebCrypto. One consumer is offline when the decisive
vote lands and catches up on reconnection."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.helpers import ACTIVE, assert_fits, by_role, enter_room, say, wait_live

pytestmark = pytest.mark.browser


def offer_card(page, title):
    return page.locator(f"{ACTIVE} article.offer", has=page.locator("h4", has_text=title))


def submit_offer(company, title, terms, euros):
    form = company.page.locator(f"{ACTIVE} form.offer-form")
    form.get_by_label("Titre").fill(title)
    form.get_by_label("Conditions").fill(terms)
    form.get_by_label("Montant par consommateur, en euros (facultatif)").fill(euros)
    form.get_by_role("button", name="Soumettre l’offre").click()
    expect(form.locator("[role=status]")).to_have_text("Offre soumise.")


def open_ballot(mediator, title, minutes="10"):
    card = offer_card(mediator.page, title)
    card.get_by_label("Durée du vote, en minutes").fill(minutes)
    card.get_by_role("button", name="Ouvrir un scrutin sur cette offre").click()
    expect(card.locator("section.ballot")).to_have_count(1)
    return card.locator("section.ballot")


def ballot_of(page, title):
    return offer_card(page, title).locator("section.ballot")


def vote(person, title, choice, *, confirm="Confirmer : j’accepte l’offre", keyboard=False):
    ballot = ballot_of(person.page, title)
    if keyboard:
        ballot.locator(f"button.vote-{choice}").focus()
        person.page.keyboard.press("Enter")
    else:
        ballot.locator(f"button.vote-{choice}").click()
    confirm_button = ballot.locator("button.confirm-vote")
    expect(confirm_button).to_be_focused()
    expect(confirm_button).to_have_text(confirm)
    if keyboard:
        person.page.keyboard.press("Space")
    else:
        confirm_button.click()
    receipt = ballot.locator("input.receipt-value")
    expect(receipt).to_have_value(re.compile(r"^[0-9a-f]{64}$"))
    return receipt.input_value()


def expect_verified(page, title, *, verdict, with_receipt):
    ballot = ballot_of(page, title)
    expect(ballot.locator(".verdict")).to_have_text(re.compile(verdict), timeout=15_000)
    checks = ["signature", "announced", "outcome", "board", "offer"] + (["receipt"] if with_receipt else [])
    for check in checks:
        expect(ballot.locator(f'li.check[data-check="{check}"]')).to_have_class(re.compile(r"\bok\b"), timeout=15_000)
    expect(ballot.locator('li.check[data-check="receipt"]')).to_have_count(1 if with_receipt else 0)
    expect(ballot.locator("li.check.failed")).to_have_count(0)


def test_a_whole_mediation_in_four_browsers(server, people, artifacts):
    demo = server.demo(consumers=2)
    users = by_role(demo)
    mediator = people(users["mediator"])
    company = people(users["company"])
    alice = people(users["consumer1"], viewport=PHONE)
    bob = people(users["consumer2"], viewport=PHONE, locale="en-GB")
    for person in (alice, bob):
        person.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    for person in (mediator, company, alice, bob):
        enter_room(person, demo["mediation_id"])

    say(mediator.page, "Bienvenue. L’entreprise va présenter une première offre.")
    say(alice.page, "Nous attendons le remboursement intégral.")

    # Offer 1: the company's form, amount in euros → amount_cents, shown to everyone.
    first = "Remboursement partiel"
    submit_offer(company, first, "50 % des frais prélevés, sous 60 jours.", "49,90")
    for person in (mediator, alice):
        expect(offer_card(person.page, first).locator(".amount")).to_contain_text("49,90")
    expect(offer_card(bob.page, first).locator(".amount")).to_contain_text("€49.90")
    # Votes and ballots belong to their roles only.
    expect(company.page.locator(f"{ACTIVE} form.open-ballot")).to_have_count(0)
    expect(alice.page.locator(f"{ACTIVE} form.open-ballot")).to_have_count(0)

    # Ballot 1: Alice accepts, then the mediator closes it early: 1 accept of 2 voters,
    # 2 needed at 75 %: rejected.
    open_ballot(mediator, first)
    expect(ballot_of(alice.page, first).locator(".rule")).to_contain_text("au moins 2 acceptations sur 2 votants")
    expect(ballot_of(company.page, first).locator("button.vote-accept")).to_have_count(0)
    expect(ballot_of(mediator.page, first).locator("button.vote-accept")).to_have_count(0)
    receipt_1 = vote(alice, first, "accept")
    for person in (mediator, company, bob):
        bar = ballot_of(person.page, first).locator("[role=progressbar]")
        expect(bar).to_have_attribute("aria-valuenow", "1")
    expect(ballot_of(bob.page, first).locator(".turnout-text")).to_have_text("1 of 2 has voted")
    close = ballot_of(mediator.page, first).locator("button.close-ballot")
    close.click()
    expect(close).to_have_text("Confirmer : clore le scrutin maintenant")
    close.click()
    for person in (mediator, company, alice, bob):
        expect(ballot_of(person.page, first).locator(".outcome")).to_have_class(re.compile("outcome-rejected"))
    expect(ballot_of(alice.page, first).locator(".outcome")).to_have_text("Offre rejetée")
    expect_verified(alice.page, first, verdict="^Vérifié", with_receipt=True)
    expect_verified(bob.page, first, verdict="^Verified", with_receipt=False)
    expect_verified(company.page, first, verdict="^Vérifié", with_receipt=False)
    expect(ballot_of(bob.page, first).locator(".vote")).to_contain_text("You did not vote")

    # Offer 2 supersedes offer 1.
    second = "Remboursement intégral"
    submit_offer(company, second, "100 % des frais prélevés, sous 30 jours, et fin des prélèvements.", "150")
    expect(offer_card(alice.page, first)).to_have_class(re.compile("superseded"))
    expect(offer_card(alice.page, second).locator(".amount")).to_contain_text("150,00")
    open_ballot(mediator, second, minutes="30")
    expect(ballot_of(bob.page, second).locator("[role=timer]")).to_contain_text(re.compile(r"00:(29|30):\d\d"))

    # Bob: the confirmation step lets him go back; then he accepts, copies his receipt
    # and goes offline.
    ballot = ballot_of(bob.page, second)
    ballot.locator("button.vote-refuse").click()
    expect(ballot.locator(".confirm")).to_contain_text("You are about to refuse this offer.")
    ballot.locator("button.cancel-vote").click()
    expect(ballot.locator("button.vote-refuse")).to_be_focused()
    receipt_bob = vote(bob, second, "accept", confirm="Confirm: I accept the offer")
    ballot.locator("button.copy-receipt").click()
    expect(ballot.locator(".receipt [role=status]")).to_have_text(re.compile("Receipt copied|Select the receipt"))
    stored = bob.page.evaluate("() => Object.entries(localStorage).filter(([k]) => k.startsWith('palabre.receipt.'))")
    assert [(value and receipt_bob in value) for _, value in stored] == [True]
    expect(ballot_of(alice.page, second).locator(".turnout-text")).to_have_text("1 sur 2 a voté")
    bob.context.set_offline(True)
    expect(bob.page.locator(f"{ACTIVE} .conn")).to_have_attribute("data-state", "offline")

    # Alice's accept makes it certain: sealed at once, accepted, and the accepted offer
    # ends the mediation.
    receipt_2 = vote(alice, second, "accept", keyboard=True)
    assert receipt_2 != receipt_1
    for person in (mediator, company, alice):
        expect(ballot_of(person.page, second).locator(".outcome")).to_have_class(re.compile("outcome-accepted"))
        expect(person.page.locator(".closed-banner")).to_contain_text("accord")
    expect(ballot_of(alice.page, second).locator(".counts")).to_have_text(
        "2 pour · 0 contre · 2 votants · 2 acceptations requises"
    )
    expect_verified(alice.page, second, verdict="^Vérifié", with_receipt=True)
    expect_verified(mediator.page, second, verdict="^Vérifié", with_receipt=False)
    expect_verified(company.page, second, verdict="^Vérifié", with_receipt=False)
    expect(ballot_of(alice.page, second).locator('li.check[data-check="receipt"]')).to_contain_text("Accepter")

    # Bob comes back: the seal and the end of the mediation arrive through sync.
    bob.context.set_offline(False)
    wait_live(bob.page)
    expect(ballot_of(bob.page, second).locator(".outcome")).to_have_text("Offer accepted")
    expect_verified(bob.page, second, verdict="^Verified", with_receipt=True)
    expect(bob.page.locator(".closed-banner")).to_contain_text("agreement")
    expect(bob.page.locator(f"{ACTIVE} .composer textarea")).to_be_hidden()
    expect(ballot_of(bob.page, second).locator("input.receipt-value")).to_have_value(receipt_bob)

    # The company never sees who voted what: no receipt, no vote, only the counts.
    expect(company.page.locator("input.receipt-value")).to_have_count(0)
    assert receipt_1 not in company.page.content() and receipt_2 not in company.page.content()

    for name, person in (("mediator", mediator), ("company", company), ("consumer", alice), ("consumer-en", bob)):
        person.page.locator(f"{ACTIVE} section.ballot").last.scroll_into_view_if_needed()
        person.page.screenshot(path=str(artifacts / f"room-{name}.png"), full_page=True)
        assert_fits(person.page)
        assert not [e for e in person.errors if "Failed to load resource" not in e], person.errors
