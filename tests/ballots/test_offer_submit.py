import pytest
from django.apps import apps

from ballots import services
from ballots.models import Offer
from crypto import signing
from rooms import log
from rooms.errors import ActionError
from rooms.models import Event, Role
from rooms.services import room_create
from tests.ballots.conftest import TERMS, TITLE, submit_offer


def every_stored_value():
    """Every value of every row of every table Django knows, text and bytes."""
    for model in apps.get_models():
        for row in model.objects.values_list():
            yield from row


def test_the_offer_is_logged_and_its_text_only_stored_encrypted(company, plenary):
    offer = submit_offer(company, plenary, amount_cents=4200)
    event = Event.objects.get(room=plenary, seq=offer.seq)
    assert event.type == "offer.submitted" and event.author_id == company.pk
    assert event.data == {"offer": {"id": str(offer.pk), "amount_cents": 4200}}
    assert sorted(event.secret_fields) == ["offer.terms", "offer.title"]
    for value in every_stored_value():
        if isinstance(value, str | dict | list):
            assert TITLE not in str(value) and TERMS not in str(value)
        if isinstance(value, bytes | memoryview):
            raw = bytes(value)
            assert TITLE.encode() not in raw and TERMS.encode() not in raw
    # Members read it back from the log, decrypted.
    frame = log.events_after(plenary, offer.seq - 1, 1)[0]
    assert frame == {
        "type": "offer.submitted",
        "seq": offer.seq,
        "at": frame["at"],
        "offer": {"id": str(offer.pk), "title": TITLE, "terms": TERMS, "amount_cents": 4200},
    }
    assert offer.offer_hash == signing.canonical_hash(
        {"id": str(offer.pk), "title": TITLE, "terms": TERMS, "amount_cents": 4200}
    )


def test_an_offer_may_have_no_amount(company, plenary):
    offer = submit_offer(company, plenary, amount_cents=None)
    assert offer.amount_cents is None
    assert log.events_after(plenary, 0, 10)[-1]["offer"]["amount_cents"] is None


@pytest.mark.parametrize("role", [Role.CONSUMER, Role.MEDIATOR])
def test_only_the_company_submits(role, mediation, plenary, make_member):
    member = make_member(mediation, role)
    with pytest.raises(ActionError) as refused:
        services.check_offer_submit(member_id=member.pk, room_id=plenary.pk)
    assert refused.value.code == "forbidden"
    assert not Offer.objects.exists()


def test_offers_are_submitted_in_the_plenary_only(mediation, company, mediator):
    caucus = room_create(mediation=mediation, kind="caucus", title="Caucus", caucus_member=company)
    with pytest.raises(ActionError) as refused:
        services.check_offer_submit(member_id=company.pk, room_id=caucus.pk)
    assert refused.value.code == "bad_request"
