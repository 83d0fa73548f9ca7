"""Baseline F, daphne's floor for a handshake: a Channels consumer that accepts and does
nothing else (no session, no origin check, no channel layer), on the same daphne. What
its handshake costs, any application on this server pays before doing anything; only
the connections phase measures it."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baselines.f_settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

urlpatterns = []


class AcceptOnly(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()


application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": URLRouter([re_path(r"ws/chat/(?P<room_name>\w+)/$", AcceptOnly.as_asgi())])}
)
