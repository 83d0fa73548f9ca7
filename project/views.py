"""Platform endpoints: health, accounts and the API's description."""

import asyncio
import functools
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import authenticate, login, logout
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import ensure_csrf_cookie

from project.api import allow, api, json_body
from project.errors import error_response
from rooms import broadcast, frames
from rooms.errors import ActionError

# gettext_lazy by its own name: makemessages extracts no other alias of it.
THROTTLED_MESSAGE = gettext_lazy("Too many failed logins: try again later.")


@allow("GET", "HEAD")
def healthz(request):
    """Checks the database and the channel layer for real (a query, a send+receive)."""
    parts = {"database": "ok", "channel_layer": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure is a 503, with its part named
        parts["database"] = f"error: {type(error).__name__}"
    try:
        async_to_sync(_layer_roundtrip)()
    except Exception as error:  # noqa: BLE001
        parts["channel_layer"] = f"error: {type(error).__name__}"
    ok = all(v == "ok" for v in parts.values())
    return JsonResponse({"status": "ok" if ok else "error", **parts}, status=200 if ok else 503)


async def _layer_roundtrip():
    """A message sent to a channel of its own and received back, on the process's own
    layer (Redis: the connections the room hub uses)."""
    layer = get_channel_layer()
    channel = await layer.new_channel("palabre.health.")
    heard = asyncio.get_running_loop().create_future()
    listener = asyncio.ensure_future(_listen(layer, channel, heard))
    await asyncio.sleep(0)  # started: cancelling it below then runs its receive's cleanup
    try:
        await layer.send(channel, {"type": "health.ping"})
        message = await asyncio.wait_for(heard, timeout=2)
    finally:
        # A layer forgets a channel when a receive on it is cancelled (a consumer's exit;
        # Redis pub/sub: the UNSUBSCRIBE): a check every few seconds leaves none behind.
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    if message.get("type") != "health.ping":
        raise RuntimeError("channel layer answered something else")


async def _listen(layer, channel: str, heard: asyncio.Future) -> None:
    message = await layer.receive(channel)
    if not heard.done():
        heard.set_result(message)
    await layer.receive(channel)  # until cancelled


@ensure_csrf_cookie
@api()
def auth_csrf(request):
    return {"csrftoken": get_token(request)}


def _user_public(user) -> dict:
    return {"id": str(user.pk), "username": user.get_username(), "display_name": user.get_full_name() or user.get_username()}


@api(methods=("POST",))
def auth_login(request):
    body = json_body(request)
    username, password = body.get("username"), body.get("password")
    if (
        not isinstance(username, str) or not isinstance(password, str) or not username or len(username) > 150
        or len(password) > 4096 or "\x00" in username
    ):
        raise ActionError("bad_request", _("'username' and 'password' are required strings."))
    user = authenticate(request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        raise ActionError("throttled", THROTTLED_MESSAGE, status=429)
    if user is None or not user.is_active:
        # One answer whether the user exists or not.
        raise ActionError("bad_credentials", _("Wrong username or password."))
    login(request, user)  # rotates the session key
    return _user_public(user)


def login_locked_out(request, credentials=None, *args, **kwargs):
    """django-axes' lockout answer (AXES_LOCKOUT_CALLABLE): JSON, 429."""
    return error_response("throttled", THROTTLED_MESSAGE, 429)


@api(methods=("POST",), login_required=True)
def auth_logout(request):
    user_id = request.user.pk
    logout(request)
    # Channels keeps sockets authenticated after logout: close them, on every process.
    broadcast.close_user_sockets(user_id, frames.CLOSE_LOGGED_OUT)
    return None, 204


@functools.cache
def _openapi_text() -> bytes:
    return (Path(__file__).with_name("openapi.json")).read_bytes()


@allow("GET", "HEAD")
def openapi(request):
    """The hand-written OpenAPI 3.1 description of the HTTP API (``project/openapi.json``)."""
    return HttpResponse(_openapi_text(), content_type="application/json")


@allow("GET", "HEAD")
def me(request):
    if not request.user.is_authenticated:
        return error_response("not_authenticated", _("Log in first."), 401)
    return JsonResponse(_user_public(request.user))
