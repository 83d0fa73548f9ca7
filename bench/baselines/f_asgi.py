"""Baseline F, the stock Channels pattern with nothing to do: a Channels consumer that
accepts and does nothing else (no session, no origin check, no channel layer), on a
stock daphne. Only the connections phase measures it. It is not daphne's floor: the
tunings of project/runtime.py (garbage collector, autobahn's debug formatting) and a
bare ASGI application instead of Channels' consumer cut it by more than half (dev runs,
1,000-6,000 sockets: 0.76-0.90 ms for F, 0.30-0.32 ms for the bare application)."""

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
