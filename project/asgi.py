"""ASGI entry point, as Channels' docs lay it out: Django's HTTP application first (it
sets Django up), then WebSocket routes behind the origin check (project.routing). The
socket reads its own cookies from the headers (rooms.consumers): Channels'
``CookieMiddleware`` kept a copy of the scope alive for every socket's whole life.

The socket's session and user are read by Django's own ``SessionStore`` and
``auth.get_user`` in the consumer's handshake, in the same database hop as its room
membership (rooms.services.room_entries), rather than by ``AuthMiddlewareStack``: its user
lookup was a thread hop and a database connection of its own per handshake (a third of a
handshake's server CPU), and its session wrapper ran on every frame sent, to save a
session that a socket never changes (BENCHMARKS.md)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from django.core.signals import request_finished  # noqa: E402

from project.connections import close_request_connections  # noqa: E402
from project.routing import Router  # noqa: E402
from project.runtime import tune_process  # noqa: E402
from rooms.routing import websocket_urlpatterns  # noqa: E402

tune_process()
request_finished.connect(close_request_connections)

# Channels' ProtocolTypeRouter, AllowedHostsOriginValidator and URLRouter, in one frame
# per socket (project.routing).
application = Router(django_asgi_app, websocket_urlpatterns)
