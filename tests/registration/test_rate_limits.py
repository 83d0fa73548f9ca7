"""Uploads are rate-limited per user (issue 10): registering and adding documents, each
past its rate, answer 429 ``rate_limited`` with ``retry_after_ms``, before the body is
read; other users are not held back; a failing cache lets requests through."""

from __future__ import annotations

import json

import pytest
from django.core.cache import caches

from rooms.models import Membership, RegistrationDocument
from tests.registration.conftest import ANSWERS, PDF, logged_in, upload

pytestmark = pytest.mark.django_db


def register(client, mediation, *files):
    data = {"answers": json.dumps(ANSWERS)}
    if files:
        data["documents"] = list(files)
    return client.post(f"/api/v1/mediations/{mediation.pk}/register", data=data)


def add_document(client, mediation, content=PDF):
    return client.post(f"/api/v1/mediations/{mediation.pk}/registration/documents", data={"file": upload("avis.pdf", content)})


def assert_rate_limited(response, *, within_s: int):
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"].startswith("Trop d’envois de fichiers : réessayez dans ")  # French by default
    assert 1000 <= error["retry_after_ms"] <= within_s * 1000


def test_document_uploads_past_the_rate_are_429_and_store_nothing(settings, asking, make_user):
    settings.PALABRE_DOCUMENT_UPLOAD_RATE = "3/m"
    claimant = logged_in(make_user())
    assert register(claimant, asking, upload("contrat.pdf", PDF)).status_code == 201
    assert [add_document(claimant, asking).status_code for _ in range(3)] == [201, 201, 201]
    assert_rate_limited(add_document(claimant, asking), within_s=60)
    assert RegistrationDocument.objects.count() == 4
    # Someone else's uploads are counted apart.
    other = logged_in(make_user())
    assert register(other, asking, upload("contrat.pdf", PDF)).status_code == 201
    assert add_document(other, asking).status_code == 201


def test_refused_uploads_count_too(settings, asking, make_user):
    settings.PALABRE_DOCUMENT_UPLOAD_RATE = "2/h"
    claimant = logged_in(make_user())
    assert register(claimant, asking, upload("contrat.pdf", PDF)).status_code == 201
    assert [add_document(claimant, asking, b"").status_code for _ in range(2)] == [400, 400]
    assert_rate_limited(add_document(claimant, asking), within_s=3600)


def test_registering_past_the_rate_is_429_before_anything_is_checked(settings, asking, make_user):
    settings.PALABRE_REGISTER_RATE = "2/h"
    claimant = logged_in(make_user())
    # Refused registrations (no document) count: an abuser gets no free attempts.
    assert [register(claimant, asking).status_code for _ in range(2)] == [400, 400]
    assert_rate_limited(register(claimant, asking, upload("contrat.pdf", PDF)), within_s=3600)
    assert Membership.objects.filter(mediation=asking).count() == 0
    assert register(logged_in(make_user()), asking, upload("contrat.pdf", PDF)).status_code == 201


def test_the_two_limits_count_apart(settings, asking, make_user):
    settings.PALABRE_REGISTER_RATE = "1/h"
    settings.PALABRE_DOCUMENT_UPLOAD_RATE = "1/h"
    claimant = logged_in(make_user())
    assert register(claimant, asking, upload("contrat.pdf", PDF)).status_code == 201
    assert add_document(claimant, asking).status_code == 201
    assert register(claimant, asking).status_code == 429
    assert add_document(claimant, asking).status_code == 429


def test_anonymous_is_401_not_counted(client, settings, asking):
    settings.PALABRE_REGISTER_RATE = "1/h"
    for _ in range(3):
        response = client.post(f"/api/v1/mediations/{asking.pk}/register")
        assert (response.status_code, response.json()["error"]["code"]) == (401, "not_authenticated")


def test_a_failing_cache_lets_uploads_through(settings, monkeypatch, asking, make_user):
    settings.PALABRE_REGISTER_RATE = "1/h"
    cache = caches[settings.RATELIMIT_USE_CACHE]

    def down(*args, **kwargs):
        raise ConnectionError("the cache is down")

    monkeypatch.setattr(cache, "add", down)
    claimant = logged_in(make_user())
    assert [register(claimant, asking).status_code for _ in range(2)] == [400, 400]
    assert register(claimant, asking, upload("contrat.pdf", PDF)).status_code == 201
