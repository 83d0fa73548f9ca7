"""ASGI entry point, as Channels' docs lay it out: Django's HTTP application first (it
sets Django up), then WebSocket routes behind the origin check and the session.

The socket's user is resolved by Django's ``auth.get_user`` in the consumer's handshake,
in the same database hop as its room membership (rooms.services.room_entry), rather than
by ``AuthMiddlewareStack``, whose user lookup is a thread hop and a database connection
of its own per handshake: a third of a handshake's server CPU (BENCHMARKS.md)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402

from rooms.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(SessionMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
