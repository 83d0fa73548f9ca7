"""Rooms wired to crypto/: known master key rings, raw SQL views of the tables, and the
two ways a member reads a room (``/events`` and the socket)."""

from __future__ import annotations

import json
import os

import pytest
from django.db import connection
from django.test import Client

from rooms import services
from rooms.models import Event, Room
from tests.crypto.rings import ring

OLD_KEY = ("mk-old", os.urandom(32))
NEW_KEY = ("mk-new", os.urandom(32))


@pytest.fixture(autouse=True)
def master_keys(settings):
    """Every room of these tests is wrapped under a known one-key ring (autouse, so that
    it is in place before the ``mediation`` fixture creates the plenary room)."""
    settings.PALABRE_MASTER_KEYS = ring(OLD_KEY)
    return settings


def set_ring(settings, *entries: tuple[str, bytes]) -> None:
    settings.PALABRE_MASTER_KEYS = ring(*entries)


def post(room, member, body: str) -> dict:
    return services.message_post(member_id=member.pk, room_id=room.pk, body=body)


def client_of(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def events(room, member, **params):
    """The raw response of ``GET /api/v1/rooms/<id>/events``."""
    return client_of(member).get(f"/api/v1/rooms/{room.pk}/events", params)


def events_by_seq(room, member) -> dict[int, dict]:
    response = events(room, member, limit=1000)
    assert response.status_code == 200, response.content
    return {event["seq"]: event for event in response.json()["events"]}


# --- raw SQL: what is really stored, bypassing the ORM --------------------------------------


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def raw_rows(model, where: str = "", params=()) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {_table(model)} {where} ORDER BY id", list(params))
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def raw_room(room_id) -> dict:
    [row] = raw_rows(Room, "WHERE id = %s", [room_id])
    return row


def raw_event(room_id, seq) -> dict:
    [row] = raw_rows(Event, "WHERE room_id = %s AND seq = %s", [room_id, seq])
    return row


def raw_update(model, pk, **values) -> None:
    columns = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in values)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_table(model)} SET {columns} WHERE id = %s", [*values.values(), pk])


def as_bytes(value) -> bytes | None:
    """A column's value as the database returned it, as bytes (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, memoryview | bytearray | bytes):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    return str(value).encode("utf-8")
