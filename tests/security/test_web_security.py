"""Web security checks (issue 9, item 5): origins, CSRF on every state-changing
endpoint, session rotation at login, logout closing sockets, production headers and
cookie flags from a real production-mode daphne, and no secret in the repository.
(``check --deploy`` in production mode: tests/project/test_settings.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
from django.test import Client
from websockets.asyncio.client import connect

from crypto.keyring import generate_master_keys
from crypto.signing import generate_sealing_keys
from tests.chaos.procs import Backend, Daphne, http, session_headers
from tests.conftest import refused

ROOT = Path(__file__).resolve().parents[2]
SPEC = json.loads((ROOT / "project" / "openapi.json").read_text())


# --- WebSocket origin check ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin",
    [(b"origin", b"http://evil.example"), (b"origin", b"null"), None, (b"origin", b"http://127.0.0.1.evil.example")],
    ids=["foreign", "null", "missing", "lookalike"],
)
async def test_sockets_from_a_foreign_missing_or_null_origin_are_refused(plenary, consumer, origin):
    code = await refused(plenary, consumer, origin=origin)
    assert code in (403, 4403, 1000, None), code  # refused at the handshake, never a welcome


# --- CSRF on every state-changing endpoint --------------------------------------------


def _state_changing_paths() -> list[str]:
    paths = []
    for path, item in SPEC["paths"].items():
        for method in item:
            if method in ("post", "put", "patch", "delete"):
                paths.append(re.sub(r"\{\w+\}", "1", path))
    return paths


def test_every_state_changing_endpoint_is_listed():
    # PROTOCOL.md's three POSTs at least; a new one is picked up from the description.
    assert {"/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/mediations/1/register"} <= set(_state_changing_paths())


@pytest.mark.django_db
@pytest.mark.parametrize("path", _state_changing_paths())
def test_a_post_without_the_csrf_token_is_refused(path, mediation, consumer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(consumer.user)
    response = client.post(path, "{}", content_type="application/json")
    assert response.status_code == 403, (path, response.content)
    assert response.json()["error"]["code"] == "csrf_failed"
    # The same request with the token passes the CSRF check (whatever the view then says).
    client.get("/api/v1/auth/csrf")
    token = client.cookies["csrftoken"].value
    response = client.post(path, "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code != 403 or response.json()["error"]["code"] != "csrf_failed"


@pytest.mark.django_db
def test_the_session_key_is_rotated_at_login(consumer):
    consumer.user.set_password("correct horse")
    consumer.user.save()
    client = Client(enforce_csrf_checks=True)
    token = client.get("/api/v1/auth/csrf").json()["csrftoken"]
    session = client.session
    session["planted"] = "by an attacker who fixed this session id"
    session.save()
    client.cookies["sessionid"] = session.session_key
    before = session.session_key
    response = client.post(
        "/api/v1/auth/login", {"username": consumer.user.username, "password": "correct horse"},
        content_type="application/json", HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200
    after = client.cookies["sessionid"].value
    assert after and after != before
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=before).exists()


# --- logout closes the user's sockets, on a real daphne --------------------------------


@pytest.mark.wire
async def test_logout_closes_that_users_sockets_within_a_second(tmp_path):
    backend = Backend(tmp_path)
    backend.migrate()
    demo = backend.demo(consumers=2)
    alice, bob = [u for u in demo["users"] if u["role"] == "consumer"]
    server = Daphne(backend)
    try:
        async def scenario():
            socks = []
            for user in (alice, alice, bob):
                ws = await connect(f"{server.ws_base}/ws/rooms/{demo['room_id']}/", origin=server.base,
                                   additional_headers={"Cookie": f"sessionid={user['session']}"})
                assert json.loads(await ws.recv())["type"] == "welcome"
                socks.append(ws)
            started = time.monotonic()
            status, _, _ = await asyncio.to_thread(
                http, "POST", server.base + "/api/v1/auth/logout", headers=session_headers(alice["session"])
            )
            assert status == 204
            for ws in socks[:2]:
                await asyncio.wait_for(ws.wait_closed(), 1.0)
                assert ws.close_code == 4401
            elapsed = time.monotonic() - started
            await socks[2].send(json.dumps({"type": "ping", "ref": "b"}))
            assert json.loads(await asyncio.wait_for(socks[2].recv(), 5))["type"] == "pong"
            await socks[2].close()
            return elapsed

        elapsed = await scenario()
        assert elapsed < 1.0
    finally:
        server.stop()
        backend.drop()


# --- production headers and cookie flags, from a production-mode process ---------------


@pytest.mark.wire
@pytest.mark.postgres
def test_production_sends_hsts_csp_and_secure_cookies(tmp_path):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        pytest.skip("production mode needs PostgreSQL and Redis (pass 2 of make test)")
    backend = Backend(tmp_path)
    production = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PALABRE_MASTER_KEYS": generate_master_keys(),
        "PALABRE_SEALING_KEYS": generate_sealing_keys(),
        "ALLOWED_HOSTS": "palabre.example,127.0.0.1",
    }
    backend.manage("migrate", "--noinput", env_extra=production)
    demo = json.loads(backend.manage("demo", "--json", env_extra=production).strip().splitlines()[-1])
    user = next(u for u in demo["users"] if u["role"] == "consumer")
    server = Daphne(backend, env_extra=production)
    try:
        https = {"Host": "palabre.example", "X-Forwarded-Proto": "https"}
        status, headers, _ = http("GET", server.base + "/api/v1/keys", headers={"Host": "palabre.example"})
        assert status == 301 and headers["Location"].startswith("https://palabre.example/")
        status, headers, body = http("GET", server.base + "/api/v1/auth/csrf", headers=https)
        assert status == 200
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        csp = headers["Content-Security-Policy"]
        for directive in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
            assert directive in csp, csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        csrf_cookie = _cookie(headers, "csrftoken")
        assert "secure" in csrf_cookie.lower() and "samesite=lax" in csrf_cookie.lower()
        token = body["csrftoken"]
        status, headers, _ = http(
            "POST", server.base + "/api/v1/auth/login", body={"username": user["username"], "password": user["password"]},
            headers={**https, "Origin": "https://palabre.example", "Referer": "https://palabre.example/",
                     "X-CSRFToken": token, "Cookie": f"csrftoken={_value(csrf_cookie)}"},
        )
        assert status == 200
        session_cookie = _cookie(headers, "sessionid")
        for flag in ("secure", "httponly", "samesite=lax"):
            assert flag in session_cookie.lower(), session_cookie
        assert server.tracebacks() == []
    finally:
        server.stop()
        backend.drop()


def _cookie(headers, name: str) -> str:
    for value in headers.get_all("Set-Cookie") or []:
        if value.startswith(name + "="):
            return value
    raise AssertionError(f"no {name} cookie in {headers.get_all('Set-Cookie')}")


def _value(cookie: str) -> str:
    return cookie.split(";", 1)[0].split("=", 1)[1]


# --- no key or secret in the repository -------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"),
    "generated key ring (mk-/sk-)": re.compile(r"\b(?:mk|sk)-\d{8}-[0-9a-f]{8}:[A-Za-z0-9+/]{40,}={0,2}"),
    "Django insecure key": re.compile("django" + "-insecure-"),  # split: never matches its own source
    "SECRET_KEY literal": re.compile(r"""SECRET_KEY\s*[=:]\s*["'][^"'\s]{20,}["']"""),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
}


def test_no_key_or_secret_is_committed():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    assert len(files) > 50
    found = []
    for name in filter(None, files):
        path = ROOT / name.decode()
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        for what, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                found.append(f"{name.decode()}: {what}: {match.group(0)[:24]}…")
    assert found == []
    # The embedded default keeps its generated keys out of git.
    ignored = subprocess.run(["git", "check-ignore", "-q", "var/master_keys"], cwd=ROOT)
    assert ignored.returncode == 0


def test_the_scan_would_see_a_committed_key():
    ring = generate_master_keys()
    assert SECRET_PATTERNS["generated key ring (mk-/sk-)"].search(ring)
    assert SECRET_PATTERNS["generated key ring (mk-/sk-)"].search(generate_sealing_keys())
