"""The room in real browsers: live chat with history, and no message lost or shown twice
across dropped connections."""

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.helpers import (
    ACTIVE,
    SocketTap,
    assert_fits,
    by_role,
    chat,
    enter_room,
    say,
    wait_live,
)

pytestmark = pytest.mark.browser


def test_chat_history_and_reconnect_without_loss(server, people, artifacts):
    demo = server.demo(consumers=2)
    users = by_role(demo)
    mediator = people(users["mediator"])
    company = people(users["company"])
    alice = people(users["consumer1"], viewport=PHONE)
    bob = people(users["consumer2"], viewport=PHONE, locale="en-GB")
    tap = SocketTap(bob.page)
    for person in (mediator, company, alice, bob):
        enter_room(person, demo["mediation_id"])

    # Live chat: author, role badge and time on every message, for everyone.
    say(mediator.page, "Bonjour à toutes et à tous, je suis la médiatrice.")
    say(company.page, "Bonjour, Abonnix vous écoute.")
    say(alice.page, "Bonjour ! <b>pas de balise</b>")
    first = chat(mediator.page)
    assert [body for _, body in first] == [
        "Bonjour à toutes et à tous, je suis la médiatrice.",
        "Bonjour, Abonnix vous écoute.",
        "Bonjour ! <b>pas de balise</b>",
    ]
    for person in (company, alice, bob):
        expect(person.page.locator(f"{ACTIVE} li.message")).to_have_count(3)
        assert chat(person.page) == first
    last = bob.page.locator(f"{ACTIVE} li.message").last
    expect(last.locator(".author")).to_have_text("Consommateur 1")
    expect(last.locator(".badge")).to_have_text("Consumer")
    assert last.locator("time").get_attribute("datetime")
    expect(alice.page.locator(f"{ACTIVE} li.message").first.locator(".badge")).to_have_text("Médiateur")
    assert alice.page.locator(f"{ACTIVE} li.message b").count() == 0  # text, never markup

    # 1. The network goes away: the page says so, and catches up when it comes back.
    bob.context.set_offline(True)
    expect(bob.page.locator(f"{ACTIVE} .conn")).to_have_attribute("data-state", "offline")
    expect(bob.page.locator(f"{ACTIVE} .conn")).to_contain_text("Offline")
    say(mediator.page, "Pendant la coupure, un.")
    say(company.page, "Pendant la coupure, deux.")
    say(mediator.page, "Pendant la coupure, trois.")
    bob.context.set_offline(False)
    wait_live(bob.page)
    expect(bob.page.locator(f"{ACTIVE} li.message")).to_have_count(6)
    assert chat(bob.page) == chat(mediator.page)

    # 2. A connection that dies silently: frames sent meanwhile never reach the page. When
    # the socket closes, the page reconnects and syncs; old frames replayed on the new
    # socket (a duplicate, and one from beyond the gap) are shown once, in order.
    tap.swallowing = True
    say(mediator.page, "Perdu dans le tunnel, un.")
    say(alice.page, "Perdu dans le tunnel, deux.")
    say(company.page, "Perdu dans le tunnel, trois.")
    expect(mediator.page.locator(f"{ACTIVE} li.message")).to_have_count(9)
    lost = tap.frames(tap.swallowed, "chat.message")
    assert len(lost) == 3
    seen = tap.frames(tap.delivered, "chat.message")
    tap.replay_after_welcome = [json.dumps(seen[-1]), json.dumps(lost[-1]), json.dumps(seen[0])]
    tap.swallowing = False
    tap.cut()
    expect(bob.page.locator(f"{ACTIVE} .conn")).not_to_have_attribute("data-state", "live")
    wait_live(bob.page)
    expect(bob.page.locator(f"{ACTIVE} li.message")).to_have_count(9)
    shown = chat(bob.page)
    assert shown == chat(mediator.page)
    seqs = [seq for seq, _ in shown]
    assert seqs == sorted(set(seqs))
    assert len(tap.sockets) == 3  # the first socket, after going offline, after the cut

    # 3. Talking goes on after the reconnection, both ways.
    say(bob.page, "I'm back.")
    expect(alice.page.locator(f"{ACTIVE} li.message .body", has_text="I'm back.")).to_have_count(1)

    # 4. History on entry: a reload shows the whole conversation once.
    alice.page.reload()
    wait_live(alice.page)
    expect(alice.page.locator(f"{ACTIVE} li.message")).to_have_count(10)
    assert chat(alice.page) == chat(mediator.page)

    for name, person in (("mediator", mediator), ("company", company), ("consumer", alice), ("consumer-en", bob)):
        person.page.screenshot(path=str(artifacts / f"chat-{name}.png"), full_page=True)
        assert_fits(person.page)
        assert not [e for e in person.errors if "Failed to load resource" not in e], person.errors
