"""project.routing: Channels' origin check and URL routing in one frame per socket. It
decides as Channels' ``AllowedHostsOriginValidator(URLRouter(routes))`` does, and a
connected socket's task keeps neither the scope daphne made nor its parsed headers."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import re_path

from project.routing import Router
from rooms.routing import websocket_urlpatterns
from tests.conftest import communicator, session_cookie


def scope_of(path, *origins, root_path=""):
    headers = [(b"host", b"testserver")] + [(b"origin", origin) for origin in origins]
    return {"type": "websocket", "path": path, "root_path": root_path, "headers": headers, "subprotocols": []}


SCOPES = [
    scope_of("/ws/rooms/12/", b"http://localhost"),
    scope_of("/ws/rooms/12/", b"http://evil.example"),
    scope_of("/ws/rooms/12/", b"null"),
    scope_of("/ws/rooms/12/"),
    scope_of("/ws/rooms/12/", b"http://evil.example", b"http://localhost"),  # the last one counts
    scope_of("/ws/rooms/12/", b"http://localhost", b"http://evil.example"),
    scope_of("/ws/rooms/12/", b"http://localhost:8000"),
    scope_of("/ws/rooms/12/", b"http://localhost.evil.example"),
    scope_of("/ws/rooms/12/", b"\xff\xfe"),
    scope_of("/prefix/ws/rooms/7/", b"http://localhost", root_path="/prefix"),
]


async def decide(application, scope) -> tuple:
    """What the application made of the socket: the scope its consumer got, or what it
    sent instead (a refusal)."""
    got, sent = [], []

    async def consumer(scope, receive, send):
        got.append(scope)

    messages = iter([{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}])

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    routes = [re_path(r"^ws/rooms/(?P<room_id>[0-9]{1,18})/$", consumer)]
    await application(routes)(dict(scope), receive, send)
    return [{k: v for k, v in s.items() if k != "headers"} for s in got], sent


@pytest.mark.parametrize("scope", SCOPES)
async def test_it_decides_as_channels_origin_check_and_url_router(scope, settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    ours = await decide(lambda routes: Router(None, routes), scope)
    channels = await decide(lambda routes: AllowedHostsOriginValidator(URLRouter(routes)), scope)
    assert ours == channels


async def test_an_unknown_path_fails_as_url_router_does(settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    scope = scope_of("/ws/nowhere/", b"http://localhost")
    with pytest.raises(ValueError, match="No route found"):
        await decide(lambda routes: Router(None, routes), scope)
    with pytest.raises(ValueError, match="No route found"):
        await decide(lambda routes: AllowedHostsOriginValidator(URLRouter(routes)), scope)


def test_the_project_serves_its_websocket_routes_through_it():
    from project.asgi import application

    assert isinstance(application, Router)
    assert [r.pattern.regex.pattern for r in application.routes] == [r.pattern.regex.pattern for r in websocket_urlpatterns]


def frames_locals(task) -> list:
    """The locals of every frame a socket's task is suspended in."""
    found, coro = [], task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        if frame is not None:
            found.extend(frame.f_locals.values())
        coro = getattr(coro, "cr_await", None)
    return found


@pytest.mark.django_db(transaction=True)
async def test_a_connected_socket_keeps_neither_daphnes_scope_nor_its_parsed_cookies(plenary, consumer):
    session = await sync_to_async(session_cookie)(consumer.user)
    comm = await sync_to_async(communicator)(plenary.pk, headers=[(b"cookie", f"sessionid={session}".encode())])
    connected, _ = await comm.connect()
    assert connected and json.loads(await comm.receive_from(3))["type"] == "welcome"
    kept = frames_locals(comm.future)
    assert kept, "the socket's task is suspended in its frames"
    assert not any(value is comm.scope for value in kept)  # only the consumer's copy of it
    consumers = [value for value in kept if type(value).__name__ == "RoomConsumer"]
    assert consumers and consumers[0].scope is not comm.scope
    # Nothing the socket's frames hold is a mapping of its cookies.
    assert not any(isinstance(value, dict) and session in value.values() for value in kept)
    assert not any(session in getattr(value, "COOKIES", {}).values() for value in kept)
    await comm.disconnect()
