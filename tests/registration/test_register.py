"""POST /mediations/<id>/register with answers and supporting documents, GET
/registration, POST /registration/documents and GET /documents/<id> (issue 10, item 1)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from rooms.models import Membership, Phase, Registration, RegistrationDocument, Role
from tests.registration.conftest import ANSWERS, JPEG, PDF, logged_in, png, upload

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def register_json(client, mediation, body):
    return client.post(f"/api/v1/mediations/{mediation.pk}/register", data=json.dumps(body), content_type="application/json")


def register_multipart(client, mediation, answers, *files):
    data = {"answers": json.dumps(answers)}
    if files:
        data["documents"] = list(files)
    return client.post(f"/api/v1/mediations/{mediation.pk}/register", data=data)


def error_of(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_an_empty_body_still_registers_where_nothing_is_asked(mediation, make_user):
    client = logged_in(make_user())
    response = client.post(f"/api/v1/mediations/{mediation.pk}/register")
    assert response.status_code == 201
    assert response.json()["status"] == "admitted"


def test_the_detail_says_what_registration_asks(client, asking):
    detail = client.get(f"/api/v1/mediations/{asking.pk}", HTTP_ACCEPT_LANGUAGE="en").json()
    registration = detail["registration"]
    assert registration["open"] is True
    assert registration["documents_min"] == 1
    assert registration["document_max_bytes"] == 5 * MB
    assert registration["document_types"] == ["application/pdf", "image/png", "image/jpeg"]
    assert registration["fields"][0] == {
        "name": "contract_number", "label": "Contract number", "type": "text", "required": True, "max_length": 40,
    }
    french = client.get(f"/api/v1/mediations/{asking.pk}", HTTP_ACCEPT_LANGUAGE="fr").json()
    assert french["registration"]["fields"][0]["label"] == "Numéro de contrat"
    assert french["registration"]["fields"][2]["max_length"] == 4000


def test_register_with_answers_and_documents_then_read_them_back(asking, make_user):
    user = make_user()
    client = logged_in(user)
    response = register_multipart(client, asking, ANSWERS, upload("contrat.pdf", PDF), upload("relevé.png", png()))
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"

    mine = client.get(f"/api/v1/mediations/{asking.pk}/registration").json()
    assert mine["status"] == "pending" and mine["reason"] is None and mine["decided_at"] is None
    assert mine["answers"] == ANSWERS
    assert [(d["name"], d["content_type"], d["size"]) for d in mine["documents"]] == [
        ("contrat.pdf", "application/pdf", len(PDF)),
        ("relevé.png", "image/png", len(png())),
    ]
    assert mine["notices"] == {"enabled": True, "language": "fr"}

    download = client.get(mine["documents"][1]["url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "image/png"
    assert download.content == png()
    assert "attachment" in download["Content-Disposition"]
    assert download["Cache-Control"] == "private, no-store"


def test_answers_in_json_and_numbers_sent_as_text(asking, make_user):
    asking.registration_documents_min = 0
    asking.save()
    client = logged_in(make_user())
    response = register_json(client, asking, {"answers": {"contract_number": "X-1", "amount_cents": "500"}})
    assert response.status_code == 201, response.content
    assert client.get(f"/api/v1/mediations/{asking.pk}/registration").json()["answers"] == {"contract_number": "X-1", "amount_cents": 500}


@pytest.mark.parametrize(
    "answers, code, words",
    [
        ({"amount_cents": 100}, "bad_request", "contract_number"),
        ({"contract_number": "   ", "amount_cents": 100}, "bad_request", "contract_number"),
        ({"contract_number": "A", "amount_cents": -1}, "bad_request", "amount_cents"),
        ({"contract_number": "A", "amount_cents": "cent"}, "bad_request", "amount_cents"),
        ({"contract_number": "A", "amount_cents": 1, "iban": "FR76"}, "bad_request", "iban"),
        ({"contract_number": "A" * 41, "amount_cents": 1}, "too_large", "contract_number"),
        ([1, 2], "bad_request", "answers"),
        ({"contract_number": "A\ud800", "amount_cents": 1}, "bad_request", "contract_number"),
    ],
)
def test_wrong_answers_are_refused_and_nothing_is_stored(asking, make_user, answers, code, words):
    response = register_multipart(logged_in(make_user()), asking, answers, upload("c.pdf", PDF))
    assert error_of(response)[1] == code
    assert words in response.json()["error"]["message"]
    assert not Membership.objects.filter(mediation=asking).exists()
    assert not RegistrationDocument.objects.exists()


@pytest.mark.parametrize(
    "name, content, status, code",
    [
        ("contrat.pdf", b"", 400, "empty_file"),
        ("contrat.pdf", b"<html><script>alert(1)</script></html>", 415, "unsupported_type"),
        ("photo.png", b"GIF89a\x01\x00\x01\x00", 415, "unsupported_type"),
        ("contrat.exe", b"MZ\x90\x00" + b"\x00" * 100, 415, "unsupported_type"),
        ("gros.pdf", PDF + b"\x00" * (5 * MB + 1 - len(PDF)), 413, "too_large"),
    ],
)
def test_refused_uploads(asking, make_user, name, content, status, code):
    response = register_multipart(logged_in(make_user()), asking, ANSWERS, upload(name, content))
    assert error_of(response) == (status, code)
    assert not Membership.objects.filter(mediation=asking).exists()


def test_exactly_the_size_limit_is_accepted(asking, make_user):
    content = PDF + b"\x00" * (5 * MB - len(PDF))
    response = register_multipart(logged_in(make_user()), asking, ANSWERS, upload("limite.pdf", content))
    assert response.status_code == 201, response.content
    assert RegistrationDocument.objects.get().size == 5 * MB


def test_a_name_says_nothing_the_bytes_do(asking, make_user):
    """A JPEG named .pdf is stored and served as what it is."""
    client = logged_in(make_user())
    assert register_multipart(client, asking, ANSWERS, upload("scan.pdf", JPEG)).status_code == 201
    document = client.get(f"/api/v1/mediations/{asking.pk}/registration").json()["documents"][0]
    assert (document["name"], document["content_type"]) == ("scan.pdf", "image/jpeg")
    assert client.get(document["url"])["Content-Type"] == "image/jpeg"


def test_a_body_too_large_for_any_request_is_413(asking, make_user):
    client = logged_in(make_user())
    response = client.post(
        f"/api/v1/mediations/{asking.pk}/register",
        data=b"x" * 10,
        content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(21 * MB + 1),
    )
    assert error_of(response) == (413, "too_large")


def test_more_files_than_a_request_carries_is_400(asking, make_user):
    files = [upload(f"p{i}.pdf", PDF) for i in range(5)]
    response = register_multipart(logged_in(make_user()), asking, ANSWERS, *files)
    assert response.status_code == 400
    assert not Membership.objects.filter(mediation=asking).exists()


def test_the_documents_the_mediation_asks_for_are_required(asking, make_user):
    response = register_multipart(logged_in(make_user()), asking, ANSWERS)
    assert error_of(response) == (400, "bad_request")
    assert response.json()["error"]["message"] == "Cette médiation demande au moins 1 pièce justificative."


def test_a_path_in_a_file_name_is_dropped(asking, make_user):
    client = logged_in(make_user())
    assert register_multipart(client, asking, ANSWERS, upload("../../etc/contrat\x07.pdf", PDF)).status_code == 201
    assert client.get(f"/api/v1/mediations/{asking.pk}/registration").json()["documents"][0]["name"] == "contrat.pdf"


def test_nothing_is_in_clear_at_rest(asking, make_user):
    client = logged_in(make_user())
    secret_pdf = PDF + "Numéro fiscal 1234567890123".encode()
    assert register_multipart(client, asking, ANSWERS, upload("avis-imposition.pdf", secret_pdf)).status_code == 201
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT answers FROM {Registration._meta.db_table}")
        (answers,) = cursor.fetchone()
        cursor.execute(f"SELECT name, content FROM {RegistrationDocument._meta.db_table}")
        name, content = cursor.fetchone()
    for blob in (answers, name, content):
        raw = bytes(blob)
        for clear in (b"AB-12345", "Prélevé".encode(), b"avis-imposition", b"%PDF", b"1234567890123"):
            assert clear not in raw
        assert raw[0] == 1  # crypto.aead's version byte


def test_a_ciphertext_moved_to_another_registration_does_not_open(asking, make_user):
    first, second = logged_in(make_user()), logged_in(make_user())
    assert register_multipart(first, asking, ANSWERS, upload("a.pdf", PDF)).status_code == 201
    other = {**ANSWERS, "contract_number": "ZZ-999"}
    assert register_multipart(second, asking, other, upload("b.pdf", PDF)).status_code == 201
    a, b = Registration.objects.order_by("pk")
    Registration.objects.filter(pk=b.pk).update(answers=a.answers)
    assert second.get(f"/api/v1/mediations/{asking.pk}/registration").json()["answers"] is None
    doc_a, doc_b = RegistrationDocument.objects.order_by("pk")
    RegistrationDocument.objects.filter(pk=doc_b.pk).update(content=doc_a.content)
    assert error_of(second.get(f"/api/v1/documents/{doc_b.pk}")) == (410, "gone")


def test_who_may_download_a_document(asking, make_user, make_member):
    owner = make_user()
    assert register_multipart(logged_in(owner), asking, ANSWERS, upload("c.pdf", PDF)).status_code == 201
    url = f"/api/v1/documents/{RegistrationDocument.objects.get().pk}"
    mediator = make_member(asking, Role.MEDIATOR)
    company = make_member(asking, Role.COMPANY)
    consumer = make_member(asking, Role.CONSUMER)
    assert logged_in(owner).get(url).content == PDF
    assert logged_in(mediator.user).get(url).content == PDF
    for someone in (company.user, consumer.user, make_user()):
        assert error_of(logged_in(someone).get(url)) == (404, "not_found")
    assert error_of(logged_in(None).get(url)) == (401, "not_authenticated")
    assert error_of(logged_in(owner).get("/api/v1/documents/999999")) == (404, "not_found")
    assert error_of(logged_in(owner).get("/api/v1/documents/abc")) == (404, "not_found")
    assert logged_in(owner).post(url).status_code == 405


def test_a_mediator_of_another_mediation_may_not_download(asking, make_user, make_member, mediation):
    owner = make_user()
    assert register_multipart(logged_in(owner), asking, ANSWERS, upload("c.pdf", PDF)).status_code == 201
    url = f"/api/v1/documents/{RegistrationDocument.objects.get().pk}"
    elsewhere = make_member(mediation, Role.MEDIATOR)
    assert error_of(logged_in(elsewhere.user).get(url)) == (404, "not_found")


def test_documents_are_added_while_pending_only(asking, make_user, make_member):
    user = make_user()
    client = logged_in(user)
    assert register_multipart(client, asking, ANSWERS, upload("c.pdf", PDF)).status_code == 201
    url = f"/api/v1/mediations/{asking.pk}/registration/documents"
    added = client.post(url, data={"file": upload("justificatif.jpg", JPEG)})
    assert added.status_code == 201, added.content
    assert (added.json()["name"], added.json()["content_type"]) == ("justificatif.jpg", "image/jpeg")
    assert error_of(client.post(url, data={"file": upload("vide.pdf", b"")})) == (400, "empty_file")
    assert error_of(client.post(url, data={"file": upload("x.txt", b"hello")})) == (415, "unsupported_type")
    assert error_of(client.post(url, data={})) == (400, "bad_request")
    assert len(client.get(f"/api/v1/mediations/{asking.pk}/registration").json()["documents"]) == 2

    Membership.objects.filter(user=user).update(status="admitted")
    assert error_of(client.post(url, data={"file": upload("tard.pdf", PDF)})) == (409, "conflict")
    assert error_of(logged_in(make_user()).post(url, data={"file": upload("c.pdf", PDF)})) == (404, "not_found")


def test_registration_phases(make_mediation, make_user):
    soon = timezone.now() + timedelta(days=3)
    closed_in_dialogue = make_mediation(phase=Phase.DIALOGUE, registration_in_dialogue=False, closes_at=soon)
    in_registration = make_mediation(phase=Phase.REGISTRATION, registration_in_dialogue=False, closes_at=soon)
    client = logged_in(make_user())
    assert error_of(register_json(client, closed_in_dialogue, {})) == (410, "gone")
    assert client.get(f"/api/v1/mediations/{closed_in_dialogue.pk}").json()["registration"]["open"] is False
    assert register_json(client, in_registration, {}).status_code == 201


def test_my_registration_before_registering_is_404(asking, make_user, client):
    assert error_of(logged_in(make_user()).get(f"/api/v1/mediations/{asking.pk}/registration")) == (404, "not_found")
    assert error_of(client.get(f"/api/v1/mediations/{asking.pk}/registration")) == (401, "not_authenticated")


def test_the_language_of_the_registration_is_the_notices_language(mediation, make_user):
    client = logged_in(make_user())
    response = client.post(f"/api/v1/mediations/{mediation.pk}/register", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 201
    assert Membership.objects.get(pk=response.json()["member_id"]).language == "en"


def test_notices_can_be_turned_off_and_their_language_chosen(mediation, make_user):
    user = make_user()
    client = logged_in(user)
    url = f"/api/v1/mediations/{mediation.pk}/notices"
    assert client.get(url).status_code == 403
    assert client.post(f"/api/v1/mediations/{mediation.pk}/register").status_code == 201
    assert client.get(url).json() == {"enabled": True, "language": "fr"}

    def post(body):
        return client.post(url, data=json.dumps(body), content_type="application/json")

    assert post({"enabled": False}).json() == {"enabled": False, "language": "fr"}
    assert post({"language": "en"}).json() == {"enabled": False, "language": "en"}
    assert post({"enabled": True, "language": "fr"}).json() == {"enabled": True, "language": "fr"}
    assert error_of(post({"language": "de"})) == (400, "bad_request")
    assert error_of(post({"enabled": "no"})) == (400, "bad_request")
    assert error_of(post({"language": 3})) == (400, "bad_request")
    assert error_of(post({"language": None})) == (400, "bad_request")
    assert error_of(post({"enabled": None})) == (400, "bad_request")
    assert Membership.objects.get(user=user).notices_enabled is True
    assert error_of(logged_in(None).get(url)) == (401, "not_authenticated")


def test_answers_that_are_not_json_are_refused(asking, make_user):
    client = logged_in(make_user())
    response = client.post(f"/api/v1/mediations/{asking.pk}/register", data={"answers": "{nope", "documents": [upload("c.pdf", PDF)]})
    assert error_of(response) == (400, "bad_request")
    assert "answers" in response.json()["error"]["message"]
