"""The process's ASGI application: Django for HTTP, and for WebSockets what Channels'
``ProtocolTypeRouter({"websocket": AllowedHostsOriginValidator(URLRouter(routes))})``
does, in one coroutine frame instead of three.

Each of those layers awaits the next for the socket's whole life, so each stays a
suspended frame holding its locals: the scope as daphne made it (beside the copy with
``url_route`` that the consumer keeps), the parsed Origin, the last header read. With a
room of 150,000 that is memory for nothing: 1.1 kB per idle socket (BENCHMARKS.md,
memory per idle connection; tests/project/test_routing.py). The rules are Channels':
its ``OriginValidator.valid_origin`` with ``ALLOWED_HOSTS`` as
``AllowedHostsOriginValidator`` sets it up, its ``WebsocketDenier``, and URLRouter's
matching of Django URL patterns into ``path_remaining`` and ``url_route``.
"""

from __future__ import annotations

from urllib.parse import urlparse

from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier


class Router:
    def __init__(self, http, websocket_urlpatterns):
        self.http = http
        self.origins = AllowedHostsOriginValidator(None)  # its valid_origin, as configured
        self.routes = URLRouter(websocket_urlpatterns).routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.http(scope, receive, send)
        # Rebound: this frame keeps only the scope the consumer keeps too.
        application, scope = self.websocket(scope)
        return await application(scope, receive, send)

    def websocket(self, scope) -> tuple:
        """The application for a socket and the scope to give it."""
        if not self.origins.valid_origin(_parsed_origin(scope)):
            return WebsocketDenier(), scope
        # URLRouter's matching as the outermost router (the only one here): no outer
        # path_remaining or url_route to carry over.
        path, root_path = scope["path"], scope.get("root_path", "")
        if root_path:
            if not path.startswith(root_path):
                raise ValueError(f"No route found for path {path!r}.")
            path = path[len(root_path) :]
        path = path.lstrip("/")
        for route in self.routes:
            match = route.pattern.match(path)
            if match:
                new_path, args, kwargs = match
                url_route = {"args": args, "kwargs": {**kwargs, **route.default_args}}
                return route.callback, dict(scope, path_remaining=new_path, url_route=url_route)
        raise ValueError(f"No route found for path {path!r}.")


def _parsed_origin(scope):
    """The Origin header as ``OriginValidator`` reads it: the last one, parsed."""
    parsed = None
    for name, value in scope.get("headers", []):
        if name == b"origin":
            try:
                parsed = urlparse(value.decode("latin1"))
            except UnicodeDecodeError:
                pass
    return parsed
