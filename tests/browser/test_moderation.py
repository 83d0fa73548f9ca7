"""The mediator's controls in real browsers: redact, mute, moderated mode, caucus rooms as
tabs; and the room closing itself at the mediation's deadline."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.helpers import ACTIVE, assert_fits, by_role, enter_room, say

pytestmark = pytest.mark.browser


def composer(page):
    return page.locator(f"{ACTIVE} .composer textarea")


def test_mediator_moderates_and_opens_a_caucus_then_the_room_closes(server, people, artifacts):
    demo = server.demo(consumers=2)
    users = by_role(demo)
    mediator = people(users["mediator"])
    company = people(users["company"])
    alice = people(users["consumer1"], viewport=PHONE)
    bob = people(users["consumer2"], viewport=PHONE)
    for person in (mediator, company, alice, bob):
        enter_room(person, demo["mediation_id"])

    # Only the mediator has moderation controls; only the company the offer form.
    expect(mediator.page.locator(f"{ACTIVE} .moderation")).to_be_visible()
    for person in (company, alice):
        expect(person.page.locator(f"{ACTIVE} .moderation")).to_have_count(0)
        expect(person.page.locator(f"{ACTIVE} button.redact")).to_have_count(0)
    expect(company.page.locator(f"{ACTIVE} .offer-form")).to_be_visible()
    expect(alice.page.locator(f"{ACTIVE} .offer-form")).to_have_count(0)

    # Redact: two steps, and the message is shown as removed everywhere.
    say(alice.page, "Un message déplacé.")
    target = mediator.page.locator(f"{ACTIVE} li.message", has_text="Un message déplacé.")
    target.locator("button.redact").click()
    expect(target.locator("button.redact")).to_have_text("Confirmer la suppression")
    target.locator("button.redact").click()
    for person in (mediator, alice, bob):
        removed = person.page.locator(f"{ACTIVE} li.message.removed")
        expect(removed).to_have_count(1)
        expect(removed.locator(".body")).to_have_text("Message supprimé par le médiateur.")
    assert "déplacé" not in bob.page.locator(f"{ACTIVE} .messages").inner_text()

    # Mute and unmute, from the member list.
    mediator.page.get_by_role("button", name="Réduire Consommateur 1 au silence").click()
    expect(composer(alice.page)).to_be_disabled()
    expect(alice.page.locator(f"{ACTIVE} .composer-note")).to_contain_text("réduit·e au silence")
    expect(composer(bob.page)).to_be_enabled()
    mediator.page.get_by_role("button", name="Rendre la parole à Consommateur 1").click()
    expect(composer(alice.page)).to_be_enabled()

    # Moderated mode: consumers read, the mediator and the company post.
    mediator.page.get_by_label("Salle modérée").check()
    expect(composer(alice.page)).to_be_disabled()
    expect(alice.page.locator(f"{ACTIVE} .flag")).to_be_visible()
    expect(composer(company.page)).to_be_enabled()
    say(company.page, "L’entreprise prend la parole.")
    alice.page.screenshot(path=str(artifacts / "moderated-consumer.png"), full_page=True)
    mediator.page.get_by_label("Salle modérée").uncheck()
    expect(composer(alice.page)).to_be_enabled()

    # A caucus: a new tab for the mediator (selected) and for Alice (announced), nobody else.
    mediator.page.get_by_role("button", name="Ouvrir un aparté avec Consommateur 1").click()
    expect(mediator.page.get_by_role("tab")).to_have_count(2)
    caucus_tab = mediator.page.get_by_role("tab", selected=True)
    expect(caucus_tab).to_contain_text("Consommateur 1")
    expect(mediator.page).to_have_url(re.compile(r"/rooms/\d+/$"))
    assert mediator.page.url != f"{server.url}/rooms/{demo['room_id']}/"
    say(mediator.page, "Bonjour Alice, parlons en privé.")
    expect(alice.page.get_by_role("tab")).to_have_count(2)
    # Keyboard: from the selected tab, the arrow key moves to the next one.
    alice.page.get_by_role("tab", selected=True).focus()
    alice.page.keyboard.press("ArrowRight")
    expect(alice.page.get_by_role("tab", selected=True)).to_contain_text("Consommateur 1")
    expect(alice.page.locator(f"{ACTIVE} li.message .body")).to_have_text(["Bonjour Alice, parlons en privé."])
    say(alice.page, "Merci, je vous écoute.")
    expect(mediator.page.locator(f"{ACTIVE} li.message")).to_have_count(2)
    for person in (company, bob):
        expect(person.page.get_by_role("tab")).to_have_count(0)
        assert "parlons en privé" not in person.page.content()
    mediator.page.screenshot(path=str(artifacts / "caucus-mediator.png"), full_page=True)
    alice.page.screenshot(path=str(artifacts / "caucus-consumer.png"), full_page=True)
    assert_fits(alice.page)

    # The deadline: the countdown runs out, and the room closes itself in every page.
    expect(bob.page.locator(".room-head .countdown")).to_contain_text(re.compile(r"6 jours \d\d:\d\d:\d\d"))
    server.shell(
        "from datetime import timedelta; from django.utils import timezone; from rooms.models import Mediation; "
        f"Mediation.objects.filter(pk={demo['mediation_id']}).update(closes_at=timezone.now() + timedelta(seconds=2))"
    )
    for person in (mediator, alice, bob):  # a reconnection picks up the new deadline
        person.page.reload()
    expect(bob.page.locator(".room-head .countdown time")).to_have_text(re.compile(r"00:00:0[0-2]"))
    bob.page.wait_for_timeout(2500)
    server.run_deadlines()
    for person in (mediator, alice, bob):
        expect(person.page.locator(".closed-banner")).to_be_visible(timeout=10_000)
        expect(person.page.locator(".closed-banner")).to_contain_text("close")
        expect(composer(person.page)).to_be_disabled()
        expect(composer(person.page)).to_be_hidden()
    expect(mediator.page.locator(f"{ACTIVE} button.redact")).to_have_count(0)
    expect(bob.page.locator(".room-head .countdown")).to_have_text("Médiation close")
    bob.page.screenshot(path=str(artifacts / "closed-consumer.png"), full_page=True)
    for person in (mediator, company, alice, bob):
        assert not [e for e in person.errors if "Failed to load resource" not in e], person.errors
