"""Issue 3, item 5: /healthz, auth (csrf, login, logout, throttling), JSON errors on every
path, in French and in English."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.test import Client
from django.urls import path

from project import urls as project_urls
from project import views

pytestmark = pytest.mark.django_db


def csrf_client() -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    response = client.get("/api/v1/auth/csrf")
    assert response.status_code == 200
    token = response.json()["csrftoken"]
    assert client.cookies["csrftoken"].value
    return client, token


def post(client: Client, url: str, body, token: str | None, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    headers = {"HTTP_X_CSRFTOKEN": token} if token else {}
    return client.post(url, data=data, content_type="application/json", **headers, **extra)


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"code", "message"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert b"Traceback" not in response.content and b"<html" not in response.content.lower()
    return body["error"]


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user(
        username="alice", password="correct horse", first_name="Alice", last_name="Martin"
    )


# --- /healthz -------------------------------------------------------------------------------


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


async def test_healthz_checks_leave_no_channel_behind():
    """A health check every few seconds on a process that runs for weeks: each check's
    channel is forgotten (Redis pub/sub: unsubscribed) once it has answered."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channels = layer._get_layer().channels if hasattr(layer, "_get_layer") else layer.channels
    for _ in range(3):
        await views._layer_roundtrip()
    assert not [name for name in channels if "palabre.health." in name]


def test_healthz_names_a_failing_database(client, monkeypatch):
    class DownDatabase:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(views, "connection", DownDatabase())
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["channel_layer"] == "ok"
    assert body["database"].startswith("error") and "OperationalError" in body["database"]


def test_healthz_names_a_failing_channel_layer(client, monkeypatch):
    class DownLayer:
        async def new_channel(self, prefix="specific."):
            raise ConnectionError("redis down")

    monkeypatch.setattr(views, "get_channel_layer", lambda: DownLayer())
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] == "ok"
    assert body["channel_layer"].startswith("error") and "ConnectionError" in body["channel_layer"]


# --- csrf, login, logout --------------------------------------------------------------------


def test_csrf_sets_the_cookie_and_answers_the_token():
    client, token = csrf_client()
    assert len(token) == 64


def test_login_answers_the_user_and_sets_a_session(alice):
    client, token = csrf_client()
    response = post(client, "/api/v1/auth/login", {"username": "alice", "password": "correct horse"}, token)
    assert response.status_code == 200
    assert response.json() == {"id": str(alice.pk), "username": "alice", "display_name": "Alice Martin"}
    assert client.cookies["sessionid"].value
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["id"] == str(alice.pk)


def test_login_rotates_the_session_key(alice):
    client, token = csrf_client()
    before = SessionStore()
    before["cart"] = "anything"
    before.create()
    client.cookies["sessionid"] = before.session_key
    response = post(client, "/api/v1/auth/login", {"username": "alice", "password": "correct horse"}, token)
    assert response.status_code == 200
    after = client.cookies["sessionid"].value
    assert after and after != before.session_key
    assert not SessionStore().exists(before.session_key)


def test_login_gives_one_answer_for_unknown_user_and_bad_password(alice):
    client, token = csrf_client()
    wrong = post(client, "/api/v1/auth/login", {"username": "alice", "password": "nope"}, token)
    unknown = post(client, "/api/v1/auth/login", {"username": "nobody", "password": "nope"}, token)
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()
    assert error_of(wrong)["code"] == "bad_credentials"
    assert "sessionid" not in client.cookies or not client.cookies["sessionid"].value


def test_inactive_user_gets_the_same_answer(alice):
    alice.is_active = False
    alice.save()
    client, token = csrf_client()
    response = post(client, "/api/v1/auth/login", {"username": "alice", "password": "correct horse"}, token)
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_credentials"


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_login_is_throttled_after_repeated_failures(alice, settings, username):
    limit = settings.AXES_FAILURE_LIMIT
    client, token = csrf_client()
    codes = [
        post(client, "/api/v1/auth/login", {"username": username, "password": f"bad-{i}"}, token).status_code
        for i in range(limit + 2)
    ]
    # The failures below the limit are plain 400s; the one that reaches it and every later
    # attempt are 429, the right password included.
    assert codes == [400] * (limit - 1) + [429] * 3
    throttled = post(client, "/api/v1/auth/login", {"username": username, "password": "correct horse"}, token)
    assert throttled.status_code == 429
    assert error_of(throttled)["code"] == "throttled"
    # Another user from the same address is not locked out by alice's attacker.
    get_user_model().objects.create_user(username="bob", password="bob's password")
    ok = post(client, "/api/v1/auth/login", {"username": "bob", "password": "bob's password"}, token)
    assert ok.status_code == 200


def test_login_without_csrf_token_is_a_json_403(alice):
    client, _token = csrf_client()
    response = post(client, "/api/v1/auth/login", {"username": "alice", "password": "correct horse"}, None)
    assert response.status_code == 403
    assert error_of(response)["code"] == "csrf_failed"
    bare = Client(enforce_csrf_checks=True)
    response = post(bare, "/api/v1/auth/login", {"username": "alice", "password": "correct horse"}, "forged")
    assert response.status_code == 403
    assert error_of(response)["code"] == "csrf_failed"


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        b"\xff\xfe",
        "[1, 2]",
        "null",
        '"alice"',
        {"username": "alice"},
        {"password": "x"},
        {"username": 1, "password": "x"},
        {"username": "alice", "password": ["x"]},
        {"username": "", "password": "x"},
        {"username": "a" * 151, "password": "x"},
    ],
)
def test_login_with_malformed_body_is_bad_request(alice, body):
    client, token = csrf_client()
    response = post(client, "/api/v1/auth/login", body, token)
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"


def test_logout_ends_the_session(alice):
    client, token = csrf_client()
    assert post(client, "/api/v1/auth/login", {"username": "alice", "password": "correct horse"}, token).status_code == 200
    token = client.cookies["csrftoken"].value  # rotated at login
    old_session = client.cookies["sessionid"].value
    response = post(client, "/api/v1/auth/logout", {}, token)
    assert response.status_code == 204
    assert response.content == b""
    assert not SessionStore().exists(old_session)
    assert client.get("/api/v1/auth/me").status_code == 401


def test_logout_anonymous_is_401():
    client, token = csrf_client()
    response = post(client, "/api/v1/auth/logout", {}, token)
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


# --- JSON errors on every path ----------------------------------------------------------------


def test_unknown_path_is_a_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert client.get("/no/such/page/").status_code == 404


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/auth/login"),
        ("put", "/api/v1/auth/logout"),
        ("delete", "/api/v1/mediations"),
        ("post", "/api/v1/auth/csrf"),
    ],
)
def test_wrong_method_is_a_json_405(client, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response["Allow"]


def _explodes(request):
    raise RuntimeError("secret detail that must not leak")


@views.api()
def _api_explodes(request):
    raise KeyError("another secret detail")


# The project's URLs and handlers, plus two views that fail.
handler404 = project_urls.handler404
handler500 = project_urls.handler500
urlpatterns = [path("boom", _explodes), path("api-boom", _api_explodes), *project_urls.urlpatterns]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("url", ["/boom", "/api-boom"])
def test_server_error_is_a_json_500_without_a_trace(url):
    client = Client(raise_request_exception=False)
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 500
    assert error_of(response) == {"code": "server_error", "message": "Internal error. It has been logged."}
    assert b"secret detail" not in response.content


# --- i18n ----------------------------------------------------------------------------------------


def test_errors_follow_accept_language(client, alice):
    en = client.get("/api/v1/nothing", HTTP_ACCEPT_LANGUAGE="en")
    fr = client.get("/api/v1/nothing", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    assert error_of(en) == {"code": "not_found", "message": "Not found."}
    assert error_of(fr) == {"code": "not_found", "message": "Introuvable."}

    c1, t1 = csrf_client()
    bad_en = post(c1, "/api/v1/auth/login", {"username": "alice", "password": "x"}, t1, HTTP_ACCEPT_LANGUAGE="en")
    bad_fr = post(c1, "/api/v1/auth/login", {"username": "alice", "password": "x"}, t1, HTTP_ACCEPT_LANGUAGE="fr")
    assert error_of(bad_en)["message"] == "Wrong username or password."
    assert error_of(bad_fr)["message"] == "Identifiant ou mot de passe incorrect."


def test_throttled_answer_is_translated(alice, settings):
    client, token = csrf_client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        post(client, "/api/v1/auth/login", {"username": "alice", "password": f"bad-{i}"}, token)
    en = post(client, "/api/v1/auth/login", {"username": "alice", "password": "x"}, token, HTTP_ACCEPT_LANGUAGE="en")
    fr = post(client, "/api/v1/auth/login", {"username": "alice", "password": "x"}, token, HTTP_ACCEPT_LANGUAGE="fr")
    assert en.status_code == fr.status_code == 429
    assert error_of(en) == {"code": "throttled", "message": "Too many failed logins: try again later."}
    assert error_of(fr) == {"code": "throttled", "message": "Trop d’échecs de connexion : réessayez plus tard."}


def test_french_is_the_default_language(client):
    response = client.get("/api/v1/nothing")
    assert error_of(response)["message"] == "Introuvable."


def test_language_cookie_wins(client, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get("/api/v1/nothing", HTTP_ACCEPT_LANGUAGE="fr")
    assert error_of(response)["message"] == "Not found."
