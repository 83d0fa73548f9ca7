"""Registration and admission in browsers (issue 10): two consumers register with their
answers and a PDF (one on a phone, in French), a file that is no PDF is refused with the
server's reason; the mediator reads the queue, downloads a document, refuses one consumer
with a reason and admits the other in one decision; each consumer sees their status; the
refused one cannot enter the room; the mediator starts the dialogue and the admitted
consumer's room says so."""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.helpers import ACTIVE, assert_fits, wait_live

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FIELDS = [
    {"name": "contract_number", "label": {"fr": "Numéro de contrat", "en": "Contract number"}, "type": "text", "required": True, "max_length": 40},
    {"name": "amount_cents", "label": {"fr": "Montant en jeu", "en": "Amount at stake"}, "type": "amount", "required": True},
    {"name": "story", "label": {"fr": "Votre situation", "en": "Your situation"}, "type": "textarea"},
]


def make_mediation(server) -> dict:
    """A mediation in its registration phase that asks answers and one document, whose
    mediator admits each registration; a mediator and two people not yet registered."""
    tag = uuid.uuid4().hex[:8]
    code = f"""
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from rooms import services
from rooms.models import Membership, MemberStatus, Phase, Role
User = get_user_model()
now = timezone.now()
m = services.mediation_create(
    title="Assurance emprunteur {tag}", company="Assurix", phase=Phase.REGISTRATION, auto_admit=False,
    registration_fields={FIELDS!r}, registration_documents_min=1,
    registration_closes_at=now + timedelta(days=2), closes_at=now + timedelta(days=10),
)
people = {{}}
for key, display in [("mediator", "Maud Médiatrice"), ("alice", "Alice Martin"), ("bruno", "Bruno Petit")]:
    user = User.objects.create_user("reg-{tag}-" + key, password="pw-{tag}-" + key, first_name=display)
    if key == "mediator":
        Membership.objects.create(user=user, mediation=m, role=Role.MEDIATOR, status=MemberStatus.ADMITTED)
    people[key] = {{"username": user.username, "password": "pw-{tag}-" + key}}
print(json.dumps({{"mediation_id": str(m.pk), "room_id": str(services.plenary_room(m).pk), "title": m.title, "users": people}}))
"""
    return json.loads(server.shell(code).strip().splitlines()[-1])


def register(person, mediation_id, *, contract, amount, story, files):
    page = person.page
    person.login(f"/mediations/{mediation_id}/")
    page.locator("button.register").click()
    form = page.locator("form.registration-form")
    expect(form).to_be_visible()
    labels = {"fr": ("Numéro de contrat", "Montant en jeu", "Votre situation"), "en": ("Contract number", "Amount at stake", "Your situation")}
    lang = page.locator("html").get_attribute("lang")
    contract_label, amount_label, story_label = labels[lang]
    form.get_by_label(contract_label).fill(contract)
    form.get_by_label(amount_label).fill(amount)
    form.get_by_label(story_label, exact=False).fill(story)
    form.locator("input[type=file]").set_input_files(files)
    form.locator("button[type=submit]").click()
    return form


def test_register_decide_and_see_the_status(server, people, artifacts):
    demo = make_mediation(server)
    mediation_id, room_id = demo["mediation_id"], demo["room_id"]
    alice = people(demo["users"]["alice"], locale="en-US")
    bruno = people(demo["users"]["bruno"], viewport=PHONE)
    mediator = people(demo["users"]["mediator"], locale="en-US")

    # A file named .pdf that is no PDF: the server refuses it, and says which and why.
    form = register(
        alice, mediation_id, contract="AB-12345", amount="129,90", story="Prélevé depuis 2021.",
        files=[{"name": "contrat.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf at all"}],
    )
    expect(form.locator("[role=status]")).to_have_text("The file “contrat.pdf” is not a PDF, PNG or JPEG document.")
    form.locator("input[type=file]").set_input_files([{"name": "contrat.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    form.locator("button[type=submit]").click()
    mine = alice.page.locator("section.registration-status")
    expect(mine).to_have_attribute("data-status", "pending")
    expect(alice.page.locator(".membership [role=status]").first).to_have_text("Registration received: the mediator will approve it.")
    expect(mine.locator("dl.answers")).to_contain_text("AB-12345")
    expect(mine.locator("dl.answers")).to_contain_text("€")
    expect(mine.locator("a.document-link")).to_have_text("contrat.pdf")

    # Bruno, on a phone, in French.
    form = register(
        bruno, mediation_id, contract="CD-777", amount="45", story="Mon prêt immobilier.",
        files=[{"name": "avenant.pdf", "mimeType": "application/pdf", "buffer": PDF}],
    )
    expect(bruno.page.locator("section.registration-status")).to_have_attribute("data-status", "pending")
    assert_fits(bruno.page)
    bruno.page.screenshot(path=str(artifacts / "registration-pending-phone.png"), full_page=True)

    # The mediator's queue: both, with their answers and documents.
    mediator.login(f"/mediations/{mediation_id}/")
    queue = mediator.page.locator("section.registrations")
    items = queue.locator("li.registration")
    expect(items).to_have_count(2)
    alice_item = items.filter(has_text="Alice Martin")
    bruno_item = items.filter(has_text="Bruno Petit")
    expect(alice_item.locator("dl.answers")).to_contain_text("Contract number")
    expect(alice_item.locator("dl.answers")).to_contain_text("AB-12345")
    expect(bruno_item.locator("dl.answers")).to_contain_text("CD-777")
    with mediator.page.expect_download() as download:
        alice_item.locator("a.document-link").click()
    assert download.value.suggested_filename == "contrat.pdf"
    assert open(download.value.path(), "rb").read() == PDF

    # A refusal with no reason is stopped in the page; then one decision for both.
    alice_item.locator("input.mark-refuse").check()
    bruno_item.locator("input.mark-admit").check()
    send = queue.locator("button.send-decisions")
    send.click()
    expect(queue.locator(".bulk [role=status]")).to_contain_text("Alice Martin")
    expect(alice_item.locator("textarea.reason")).to_be_focused()
    alice_item.locator("textarea.reason").fill("Votre contrat n’est pas concerné par ce litige.")
    decided = []
    mediator.page.on("request", lambda r: decided.append(r.post_data_json) if r.url.endswith("/registrations/decide") else None)
    send.click()
    expect(queue.locator(".bulk [role=status]")).to_have_text("Recorded: 1 admitted, 1 refused.")
    expect(items).to_have_count(0)
    expect(queue.locator(".empty")).to_have_text("No registration is waiting.")
    assert len(decided) == 1 and len(decided[0]["decisions"]) == 2
    assert {d["decision"] for d in decided[0]["decisions"]} == {"admit", "refuse"}
    queue.locator("select.queue-filter").select_option("refused")
    expect(items).to_have_count(1)
    expect(items.first.locator(".refusal-reason")).to_contain_text("Votre contrat n’est pas concerné par ce litige.")
    mediator.page.screenshot(path=str(artifacts / "registration-queue.png"), full_page=True)
    mediator.page.set_viewport_size(PHONE)
    assert_fits(mediator.page)

    # Each consumer sees their status.
    alice.page.reload()
    mine = alice.page.locator("section.registration-status")
    expect(mine).to_have_attribute("data-status", "refused")
    expect(mine.locator(".reason-text")).to_have_text("Votre contrat n’est pas concerné par ce litige.")
    expect(alice.page.locator("a.enter")).to_have_count(0)
    bruno.page.reload()
    expect(bruno.page.locator("section.registration-status")).to_have_attribute("data-status", "admitted")
    assert_fits(bruno.page)
    bruno.page.locator("a.enter").click()
    wait_live(bruno.page)

    # The refused consumer cannot enter the room, even by its address.
    alice.page.goto(f"/rooms/{room_id}/")
    expect(alice.page.locator(f"{ACTIVE} .conn")).to_have_attribute("data-state", "refused")
    assert alice.page.request.get(f"/api/v1/rooms/{room_id}/events").status == 403

    # The mediator starts the dialogue (a second click confirms); the room says so.
    mediator.page.goto(f"/mediations/{mediation_id}/")
    advance = mediator.page.locator("button.advance")
    expect(advance).to_have_text("End registration and start the dialogue")
    advance.click()
    expect(advance).to_have_text("Confirm: start the dialogue")
    advance.click()
    expect(mediator.page.locator(".phase-now")).to_have_text("Phase: Dialogue under way.")
    expect(advance).to_have_text("Close the mediation without agreement")
    # (Bruno reads French: the note is the room's first, whatever its words.)
    expect(bruno.page.locator(f"{ACTIVE} li.note")).to_have_count(1)
    for person in (alice, bruno, mediator):
        assert not [e for e in person.errors if "Failed to load resource" not in e and "403" not in e], person.errors
