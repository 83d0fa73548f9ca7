"""The people of a mediation as named fixtures (Zulip-style), and socket helpers."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from rooms import services
from rooms.models import Membership, MemberStatus, Phase, Role

ORIGIN = (b"origin", b"http://testserver")
_names = itertools.count(1)
_rate_caches = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Django's PBKDF2 costs ~0.3 s per user; tests make hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_members_counts():
    # Each test's database starts again from the same ids: a count cached by the last one
    # must not answer for this one's mediation.
    services._members_counts.clear()


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    # Upload limits count per user id, and ids start again in each test: each test counts
    # in a cache of its own (never clear() the default cache: on Redis that is FLUSHDB).
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"ratelimit-{next(_rate_caches)}"},
    }
    settings.RATELIMIT_USE_CACHE = "ratelimit"


@pytest.fixture(autouse=True)
async def _stop_room_hub():
    """Each test has its own event loop; the channel layer (Redis: its receive lock) and
    the database connection of the thread-sensitive executor outlive it. Stop this loop's
    room hub and close that connection, or the next test's hub finds the layer still
    receiving on a dead loop and PostgreSQL keeps a session on the test database."""
    yield
    from channels.layers import channel_layers
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from django.db import connections

    from rooms.hub import _hubs

    hub = _hubs.pop(id(asyncio.get_running_loop()), None)
    if hub is not None:
        for task in hub._tasks:
            task.cancel()
        await asyncio.gather(*hub._tasks, return_exceptions=True)
        for handle in hub._coalesced.values():
            handle.cancel()
    # A fresh layer for the next test, its Redis connections closed (the pub/sub layer's
    # flush closes this loop's connections).
    for layer in list(channel_layers.backends.values()):
        if isinstance(layer, RedisPubSubChannelLayer):
            await layer.flush()
    channel_layers.backends.clear()
    await sync_to_async(connections.close_all)()


@pytest.fixture
def make_mediation(db):
    def make(**fields) -> services.Mediation:
        defaults = dict(
            title="Frais cachés",
            company="Abonnix SA",
            phase=Phase.DIALOGUE,
            closes_at=timezone.now() + timedelta(days=1),
        )
        return services.mediation_create(**{**defaults, **fields})

    return make


@pytest.fixture
def mediation(make_mediation):
    return make_mediation()


@pytest.fixture
def plenary(mediation):
    return services.plenary_room(mediation)


@pytest.fixture
def make_member(db):
    def make(mediation, role=Role.CONSUMER, status=MemberStatus.ADMITTED, name=None) -> Membership:
        n = next(_names)
        user = get_user_model().objects.create_user(
            username=name or f"{role}-{n}", password="pw-" + str(n), first_name=f"{role.title()} {n}"
        )
        return Membership.objects.create(user=user, mediation=mediation, role=role, status=status)

    return make


@pytest.fixture
def mediator(mediation, make_member):
    return make_member(mediation, Role.MEDIATOR)


@pytest.fixture
def company(mediation, make_member):
    return make_member(mediation, Role.COMPANY)


@pytest.fixture
def consumer(mediation, make_member):
    return make_member(mediation, Role.CONSUMER)


@pytest.fixture
def consumers(mediation, make_member):
    def make(n: int) -> list[Membership]:
        return [make_member(mediation, Role.CONSUMER) for _ in range(n)]

    return make


@pytest.fixture
def pending(mediation, make_member):
    return make_member(mediation, Role.CONSUMER, status=MemberStatus.PENDING)


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user(username=f"outsider-{next(_names)}", password="pw")


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def communicator(room_id, user=None, origin=ORIGIN, headers=()) -> WebsocketCommunicator:
    """``headers``: more handshake headers; a ``cookie`` among them joins the session
    cookie in the one Cookie header a browser sends."""
    from project.asgi import application

    cookies = [value for name, value in headers if name == b"cookie"]
    if user is not None:
        cookies.insert(0, f"sessionid={session_cookie(user)}".encode())
    sent = [origin] if origin else []
    sent += [(name, value) for name, value in headers if name != b"cookie"]
    if cookies:
        sent.append((b"cookie", b"; ".join(cookies)))
    return WebsocketCommunicator(application, f"/ws/rooms/{room_id}/", headers=sent)


class Socket:
    """A connected test client: send frames, receive them as dicts."""

    def __init__(self, comm: WebsocketCommunicator, welcome: dict):
        self.comm, self.welcome = comm, welcome

    async def send(self, frame) -> None:
        await self.comm.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    _early: dict | None = None  # a frame ``nothing`` read to see past room.counts

    async def recv(self, timeout: float = 3, *, counts: bool = False) -> dict:
        """The next frame; ``room.counts`` (presence, sent on its own schedule) only when
        asked for: tests of other frames see the stream without it."""
        while True:
            if self._early is not None:
                frame, self._early = self._early, None
            else:
                frame = json.loads(await self.comm.receive_from(timeout))
            if counts or frame.get("type") != "room.counts":
                return frame

    async def recv_until(self, frame_type: str, timeout: float = 3) -> dict:
        while True:
            frame = await self.recv(timeout, counts=frame_type == "room.counts")
            if frame["type"] == frame_type:
                return frame

    async def nothing(self, timeout: float = 0.2) -> bool:
        """No frame but room.counts comes within ``timeout`` (a frame that does is kept
        for the next ``recv``)."""
        if self._early is not None:
            return False
        while not await self.comm.receive_nothing(timeout):
            frame = json.loads(await self.comm.receive_from(timeout))
            if frame.get("type") != "room.counts":
                self._early = frame
                return False
        return True

    async def close(self) -> None:
        await self.comm.disconnect()


async def connect(room, membership_or_user, origin=ORIGIN, headers=()) -> Socket:
    """``headers``: more handshake headers, e.g. ``[(b"accept-language", b"en")]``."""
    user = getattr(membership_or_user, "user", membership_or_user)
    comm = await sync_to_async(communicator)(getattr(room, "pk", room), user, origin, headers)
    connected, code = await comm.connect()
    assert connected, f"refused with {code}"
    welcome = json.loads(await comm.receive_from(3))
    assert welcome["type"] == "welcome"
    return Socket(comm, welcome)


async def refused(room, membership_or_user=None, origin=ORIGIN):
    """The close code (or HTTP-level refusal) of a handshake that must be refused."""
    user = getattr(membership_or_user, "user", membership_or_user)
    comm = await sync_to_async(communicator)(getattr(room, "pk", room), user, origin)
    connected, code = await comm.connect()
    if connected:
        first = await comm.receive_output(3)
        await comm.disconnect()
        assert first["type"] == "websocket.close", f"got a frame before refusal: {first}"
        return first.get("code")
    return code
