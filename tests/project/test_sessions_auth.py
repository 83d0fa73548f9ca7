"""project.sessions and project.auth: the session engine and the authentication backend
read with SQL built once, and give what Django's own give (on SQLite and PostgreSQL:
the suite runs on both)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import backends, get_user_model
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from project import auth, sessions

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user(username="bob", password="correct horse", first_name="Bob")


def logged_in(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def test_settings_use_them(settings):
    assert settings.SESSION_ENGINE == "project.sessions"
    assert "project.auth.ModelBackend" in settings.AUTHENTICATION_BACKENDS
    assert "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS


def test_a_live_session_loads_as_djangos(bob):
    key = logged_in(bob)
    ours, django = sessions.SessionStore(key), db.SessionStore(key)
    assert ours.load() == django.load() != {}
    assert ours.session_key == django.session_key == key
    assert ours["_auth_user_id"] == str(bob.pk)


@pytest.mark.parametrize("key", ["expired", "unknown", "short", None])
def test_a_dead_session_loads_empty_and_loses_its_key_as_djangos(bob, key):
    live = logged_in(bob)
    if key == "expired":
        Session.objects.filter(pk=live).update(expire_date=timezone.now() - timedelta(seconds=1))
        key = live
    elif key == "unknown":
        key = "x" * 32
    elif key == "short":
        key = "abc"
    ours, django = sessions.SessionStore(key), db.SessionStore(key)
    assert ours.load() == django.load() == {}
    assert ours.session_key is django.session_key is None


def test_get_user_is_model_backends(bob):
    logged_in(bob)  # sets last_login, a datetime the read must convert as the ORM does
    ours, django = auth.ModelBackend().get_user(bob.pk), backends.ModelBackend().get_user(bob.pk)
    fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    assert {f: getattr(ours, f) for f in fields} == {f: getattr(django, f) for f in fields}
    assert ours.get_session_auth_hash() == django.get_session_auth_hash()
    assert ours.last_login.tzinfo is not None


def test_get_user_refuses_the_inactive_and_the_unknown(bob):
    bob.is_active = False
    bob.save()
    assert auth.ModelBackend().get_user(bob.pk) is None
    assert auth.ModelBackend().get_user(10**9) is None


def test_a_session_stays_logged_in_across_requests(bob):
    client = Client()
    assert client.post("/api/v1/auth/login", {"username": "bob", "password": "correct horse"}, content_type="application/json").status_code == 200
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["username"] == "bob"
    assert Session.objects.get(pk=client.cookies["sessionid"].value).get_decoded()["_auth_user_backend"] == "project.auth.ModelBackend"
