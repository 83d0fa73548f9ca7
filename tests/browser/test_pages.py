"""Signing in, the list of open mediations, registration, and the language switch."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.helpers import assert_fits, wait_live

pytestmark = pytest.mark.browser


def test_sign_in_register_enter_and_switch_language(server, people, artifacts):
    demo = server.demo(consumers=1)
    server.shell(
        "from django.contrib.auth import get_user_model; "
        "get_user_model().objects.filter(username='newcomer').delete(); "
        "get_user_model().objects.create_user('newcomer', password='pw-newcomer-1', first_name='Nina Nouvelle')"
    )
    nina = people({"username": "newcomer", "password": "pw-newcomer-1"}, viewport=PHONE)
    page = nina.page
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    card = page.locator(f'li.mediation[data-mediation-id="{demo["mediation_id"]}"]')
    expect(card).to_contain_text("Frais d'abonnement cachés (démo)")
    expect(card).to_contain_text("Connectez-vous pour vous inscrire.")
    expect(card.locator("dl.facts dd").first).to_have_text("Abonnix SA")
    expect(card.locator("dl.facts")).to_contain_text("Étape")
    assert "null" not in page.locator("main").inner_text()
    assert_fits(page)

    # A wrong password says so, in French, without leaving the page.
    page.get_by_label("Identifiant").fill("newcomer")
    page.get_by_label("Mot de passe").fill("not the password")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("form.login [role=status]")).to_have_text("Identifiant ou mot de passe incorrect.")

    page.get_by_label("Mot de passe").fill("pw-newcomer-1")
    page.get_by_label("Mot de passe").press("Enter")
    expect(page.locator(".logout")).to_be_visible()
    expect(page.locator("form.login")).to_have_count(0)
    card.get_by_role("button", name="S’inscrire à « Frais d'abonnement cachés (démo) »").click()
    expect(card.locator("[role=status]")).to_contain_text("Vous êtes inscrit·e")
    expect(card.locator("a.enter")).to_be_focused()
    page.screenshot(path=str(artifacts / "registered-consumer.png"), full_page=True)
    assert_fits(page)

    # The mediation's own page knows the newcomer is a member now.
    card.get_by_role("link", name="Frais d'abonnement cachés (démo)").click()
    expect(page.locator("h1")).to_have_text("Frais d'abonnement cachés (démo)")
    expect(page.locator(".member-of")).to_contain_text("Consommateur")

    # English through Django's set_language, kept for the next pages.
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".member-of")).to_have_text("You take part as: Consumer.")
    page.get_by_role("link", name="Enter the room").click()
    wait_live(page)
    expect(page.locator("section.room:not([hidden]) .conn")).to_have_text("Connected")
    expect(page.get_by_label("Your message")).to_be_enabled()
    assert_fits(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("form.login")).to_be_visible()
    assert not [e for e in nina.errors if "Failed to load resource" not in e], nina.errors
