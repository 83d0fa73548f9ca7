"""``manage.py demo --json [--consumers N] [--sessions]`` exactly as PROTOCOL.md says."""

from __future__ import annotations

import io
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command
from django.test import Client

from rooms.models import Mediation, Membership, MemberStatus, Phase, Room
from tests.conftest import ORIGIN


def demo(*args: str) -> dict:
    out = io.StringIO()
    call_command("demo", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    return json.loads(lines[-1])


def me(session: str) -> int:
    client = Client()
    client.cookies["sessionid"] = session
    return client.get("/api/v1/auth/me").status_code


@pytest.mark.django_db
def test_demo_json_has_the_exact_shape():
    result = demo("--json")
    assert set(result) == {"mediation_id", "room_id", "users"}
    assert all(set(u) == {"username", "password", "role"} for u in result["users"])
    roles = [u["role"] for u in result["users"]]
    assert roles == ["mediator", "company"] + ["consumer"] * 5
    mediation = Mediation.objects.get(pk=int(result["mediation_id"]))
    assert mediation.phase == Phase.DIALOGUE
    room = Room.objects.get(pk=int(result["room_id"]))
    assert (room.mediation_id, room.kind) == (mediation.pk, "plenary")
    members = Membership.objects.filter(mediation=mediation)
    assert members.count() == 7
    assert set(members.values_list("status", flat=True)) == {MemberStatus.ADMITTED}
    assert sorted(members.values_list("role", flat=True)) == sorted(roles)


@pytest.mark.django_db
def test_demo_users_log_in_with_their_password():
    result = demo("--json", "--consumers", "1")
    user = result["users"][-1]
    client = Client()
    response = client.post(
        "/api/v1/auth/login",
        data=json.dumps({"username": user["username"], "password": user["password"]}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["username"] == user["username"]


@pytest.mark.django_db
def test_demo_consumers_count_and_bounds():
    assert [u["role"] for u in demo("--json", "--consumers", "0")["users"]] == ["mediator", "company"]
    with pytest.raises(CommandError):
        call_command("demo", "--json", "--consumers", "-1", stdout=io.StringIO())


@pytest.mark.django_db
def test_demo_without_json_prints_accounts_for_people():
    out = io.StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8000/" in text
    assert "demo-mediator" in text and "demo-company" in text


@pytest.mark.django_db
def test_demo_sessions_authenticate_and_recreating_invalidates_them():
    first = demo("--json", "--sessions", "--consumers", "2")
    assert all(set(u) == {"username", "password", "role", "session"} for u in first["users"])
    assert len({u["session"] for u in first["users"]}) == 4
    assert all(me(u["session"]) == 200 for u in first["users"])
    second = demo("--json", "--sessions", "--consumers", "2")
    assert second["mediation_id"] != first["mediation_id"]
    assert all(me(u["session"]) == 401 for u in first["users"])
    assert all(me(u["session"]) == 200 for u in second["users"])
    assert Mediation.objects.filter(pk=int(first["mediation_id"])).count() == 0


async def _handshake(room_id: str, session: str) -> tuple[bool, dict | int]:
    from project.asgi import application

    comm = WebsocketCommunicator(
        application, f"/ws/rooms/{room_id}/", headers=[ORIGIN, (b"cookie", f"sessionid={session}".encode())]
    )
    connected, code = await comm.connect()
    if not connected:
        return False, code
    first = await comm.receive_output(3)
    await comm.disconnect()
    if first["type"] == "websocket.close":
        return False, first["code"]
    return True, json.loads(first["text"])


@pytest.mark.django_db(transaction=True)
async def test_demo_session_cookie_authenticates_a_socket():
    first = await sync_to_async(demo)("--json", "--sessions", "--consumers", "1")
    consumer = first["users"][-1]
    ok, welcome = await _handshake(first["room_id"], consumer["session"])
    assert ok and welcome["type"] == "welcome"
    assert welcome["me"]["role"] == "consumer"
    assert welcome["me"]["display_name"] == "Consommateur 1"
    second = await sync_to_async(demo)("--json", "--sessions", "--consumers", "1")
    # The old cookie is dead, on the new room as on the old one.
    assert await _handshake(second["room_id"], consumer["session"]) == (False, 4403)
    ok, _ = await _handshake(second["room_id"], second["users"][-1]["session"])
    assert ok


@pytest.mark.django_db
def test_ten_thousand_demo_consumers_in_seconds():
    start = time.monotonic()
    result = demo("--json", "--sessions", "--consumers", "10000")
    elapsed = time.monotonic() - start
    assert len(result["users"]) == 10_002
    assert Membership.objects.filter(mediation_id=int(result["mediation_id"])).count() == 10_002
    assert elapsed < 20, f"10,000 demo consumers took {elapsed:.1f}s"
    assert me(result["users"][-1]["session"]) == 200
