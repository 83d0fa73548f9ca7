"""The live room socket, thin (Baserow's ``ws/consumers.py``): authenticate at the
handshake, parse each frame, call the action, send the answer. No rule lives here.

Three departures from the stock consumer, all for rooms of 150,000 (anchors §2 and §4):
no channel-layer channel per connection (the process's hub listens for the room), so no
``await_many_dispatch`` either (one task per socket, not two, and no ``asyncio.wait`` per
frame); and no ``aclose_old_connections`` thread hop per frame or per close (every
database call below already goes through ``database_sync_to_async``, which closes stale
connections itself).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http.cookie import parse_cookie
from django.utils import translation
from django.utils.translation import gettext as _

from crypto.errors import CryptoError
from rooms import frames, services
from rooms.actions import ACTIONS, AFTER_ACTIONS, BATCHED_ACTIONS, Conn
from rooms.batcher import batcher
from rooms.broadcast import dumps
from rooms.errors import ActionError
from rooms.frames import Code
from rooms.hub import get_hub
from rooms.models import RoomKind
from rooms.transport import (
    backlog_bytes,
    daphne_protocol,
    forget_closed_socket,
    forget_upgrade_request,
    is_open,
    prepare,
    write_now,
)
from rooms.validate import integer

logger = logging.getLogger("palabre.consumer")

SYNC_PAGE = 500


class _Handshake:
    """What Django reads of a request, from a WebSocket scope: its cookies, parsed as
    Channels' ``CookieMiddleware`` and Django do, and its Accept-Language. Read here
    rather than by that middleware, whose copy of the scope every socket kept for its
    whole life (BENCHMARKS.md, memory per idle connection)."""

    path_info = "/"

    def __init__(self, scope):
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers") or ():
            headers.setdefault(name, value)  # the first of a repeated header, as CookieMiddleware
        self.COOKIES = parse_cookie(headers.get(b"cookie", b"").decode("latin1"))
        self.META = {"HTTP_ACCEPT_LANGUAGE": headers.get(b"accept-language", b"").decode("latin1")}


# Sockets per user in this process, counted at the handshake check itself: the hub only
# registers a socket after awaits, so concurrent handshakes all passed a check against it
# (tests/chaos/test_socket_exhaustion.py: 48 of 300 got in with a cap of 20).
_sockets_of_user: Counter[str] = Counter()


def _take_socket_slot(user_id: str) -> bool:
    if _sockets_of_user[user_id] >= settings.PALABRE_MAX_SOCKETS_PER_USER:
        return False
    _sockets_of_user[user_id] += 1
    return True


def _release_socket_slot(user_id: str) -> None:
    _sockets_of_user[user_id] -= 1
    if _sockets_of_user[user_id] <= 0:
        del _sockets_of_user[user_id]


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RoomConsumer(AsyncWebsocketConsumer):
    conn: Conn | None = None
    language: str | None = None
    _session_key: str | None = None  # from the handshake's cookies, until connect reads it
    _protocol = None
    _closing = False
    _slot: str | None = None  # the user whose socket slot this connection holds
    # Broadcasts that reach the socket between the hub's join and the welcome wait here:
    # the welcome is the first frame (PROTOCOL.md; tests/chaos/test_kill_daphne.py saw 97
    # ballot.progress frames arrive before it).
    _held: list[str] | None = None

    # What the hub indexes a connection by.
    room_id = property(lambda self: self.conn.room_id)
    member_id = property(lambda self: self.conn.member_id)
    user_id = property(lambda self: self.conn.user_id)
    mediation_id = property(lambda self: self.conn.mediation_id)
    plenary = property(lambda self: self.conn.plenary)

    async def __call__(self, scope, receive, send):
        """``AsyncConsumer.__call__`` without a channel layer: it ran ``await_many_dispatch``,
        which keeps one more task per socket and builds an ``asyncio.wait`` for every frame
        received. One socket, one loop: the next message, then its handler. The handshake's
        headers are read once, here: its language (the ``django_language`` cookie, else
        Accept-Language, else French, as LocaleMiddleware picks it for a page) and its
        session cookie."""
        self.scope = scope
        self._read_handshake(scope)
        self.channel_layer = None
        self.base_send = send
        # The one place a connection's language is activated, for the socket's whole task
        # (its own context: no other socket sees it): every message it handles, and the
        # services it calls in worker threads, which inherit the context, speak the
        # language of the handshake. Once, not per frame: activating per frame showed in
        # py-spy (with the batch's own overrides, 8 % of a process with many small rooms).
        translation.activate(self.language)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            translation.deactivate()

    def _read_handshake(self, scope) -> None:
        # In a method of its own: a local of ``__call__`` would keep the parsed headers
        # alive for the socket's whole life (BENCHMARKS.md, memory per idle connection).
        handshake = _Handshake(scope)
        self.language = translation.get_language_from_request(handshake)
        self._session_key = handshake.COOKIES.get(settings.SESSION_COOKIE_NAME)

    async def dispatch(self, message):
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- handshake -------------------------------------------------------------------

    async def connect(self):
        room_id = str(int(self.scope["url_route"]["kwargs"]["room_id"]))  # as the hub keys it
        session_key, self._session_key = self._session_key, None
        hub = get_hub()
        self._held = []
        # Where the process already listens to the room, the socket hears it from before
        # its read, whose welcome then stands: one trip to the database thread per
        # handshake, not two (a second after join, for the welcome, cost P2 8-17 % of its
        # CPU per handshake: BENCHMARKS.md, notes on the run).
        heard = hub.hold(self, room_id)
        try:
            # Read with the handshakes that arrive meanwhile (rooms.batcher): a reconnect
            # storm shares its hops and its queries.
            found = await batcher("handshake", services.room_entries_welcomed).submit((session_key, room_id))
        except BaseException:
            if heard:
                hub.release(self, room_id)
            raise
        if found is None or not _take_socket_slot(str(found[1].user_id)):
            if heard:
                hub.release(self, room_id)
            await self.close(code=frames.CLOSE_FORBIDDEN)
            return
        room, member, welcome = found
        self._slot = str(member.user_id)
        self.conn = Conn(
            user_id=str(member.user_id),
            member_id=str(member.pk),
            room_id=str(room.pk),
            mediation_id=str(room.mediation_id),
            plenary=room.kind == RoomKind.PLENARY,
        )
        self.bucket = TokenBucket(settings.PALABRE_RATE_PER_S, settings.PALABRE_RATE_BURST)
        self._protocol = daphne_protocol(self.base_send)
        await hub.join(self)
        if not heard:
            welcome = await batcher("welcome", services.welcome_frames).submit((room, member))
        hub.expect(self.conn.room_id, welcome["last_seq"] + 1)
        if self._closing:
            return  # closed by the hub meanwhile (a user's sockets closed): refused, not accepted
        # Accepted once the welcome is ready: the upgrade's 101 and the welcome leave in
        # one write to the socket (Twisted sends what was written in one turn of the
        # loop together), not two (BENCHMARKS.md, connections).
        await self.accept()
        held, self._held = self._held, None
        if self._protocol is not None:
            forget_upgrade_request(self._protocol)
        await self.send_frame(welcome)
        for text in held:
            await self.push(text)

    async def websocket_disconnect(self, message):
        """Channels' own, without its ``aclose_old_connections``: a hop to the database
        thread for every closed socket, which queued a room's mass close (its deadline,
        a deploy) ahead of every live action of the process, and doubled what a close
        costs the server. No group to leave either (the hub listens, not the socket)."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code):
        forget_closed_socket(self._protocol or daphne_protocol(self.base_send))
        if self._slot is not None:
            _release_socket_slot(self._slot)
            self._slot = None
        if self.conn is not None:
            get_hub().leave(self)

    # --- frames from the client ---------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.conn is None:
            return
        if text_data is None:
            await self.send_error(None, Code.BAD_REQUEST, _("Frames are JSON text, not binary."))
            return
        if len(text_data) > settings.PALABRE_MAX_FRAME_BYTES or (
            len(text_data) * 4 > settings.PALABRE_MAX_FRAME_BYTES
            and len(text_data.encode("utf-8", "surrogatepass")) > settings.PALABRE_MAX_FRAME_BYTES
        ):
            await self.send_error(None, Code.TOO_LARGE, _("A frame is 64 KiB at most."))
            return
        wait = self.bucket.take()
        try:
            frame = json.loads(text_data)
            # A lone surrogate ("\ud800") parses, but can be neither stored nor sent back
            # as UTF-8 (found by tests/fuzz): such a frame is unreadable. The text came in
            # as UTF-8, so only a \u escape can make one.
            if "\\u" in text_data:
                json.dumps(frame, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
            frame = None
        ref = frame.get("ref") if isinstance(frame, dict) and isinstance(frame.get("ref"), str) else None
        if wait:
            await self.send_error(ref, Code.RATE_LIMITED, _("Too many frames: slow down."), retry_after_ms=int(wait * 1000) + 1)
            return
        if not isinstance(frame, dict):
            await self.send_error(None, Code.BAD_REQUEST, _("A frame is one JSON object."))
            return
        if "ref" in frame and frame["ref"] is not None and not isinstance(frame["ref"], str):
            await self.send_error(None, Code.BAD_REQUEST, _("'ref' must be a string."))
            return
        kind = frame.get("type")
        try:
            if kind == frames.PING:
                await self.send_frame({"type": frames.PONG, "ref": ref})
            elif kind == frames.SYNC:
                await self.sync(frame, ref)
            elif isinstance(kind, str) and kind in ACTIONS:
                if kind in BATCHED_ACTIONS:
                    replies = await batcher(kind).submit((self.conn, frame, ref, self.language))
                else:
                    replies = await database_sync_to_async(ACTIONS[kind])(self.conn, frame, ref)
                for reply in replies:
                    await self.send_frame(reply)
                if kind in AFTER_ACTIONS:
                    await AFTER_ACTIONS[kind](self.conn, frame, replies)
            else:
                await self.send_error(ref, Code.BAD_REQUEST, _("Unknown frame type."))
        except ActionError as error:
            await self.send_error(ref, error.code, error.message, **error.extra)
        except (OperationalError, InterfaceError, DatabaseError, CryptoError):
            logger.warning("action %s failed on a backing service", kind, exc_info=True)
            await self.send_error(ref, Code.UNAVAILABLE, _("A backing service is unavailable: nothing was written, try again."))

    async def sync(self, frame: dict, ref) -> None:
        after = integer(frame, "after_seq", min_value=0)
        room = await database_sync_to_async(services.sync_room)(conn=self.conn)
        last_seq = after
        while True:
            page, newest = await database_sync_to_async(services.events_page)(room=room, after_seq=last_seq, limit=SYNC_PAGE)
            for event in page:
                await self.send_frame(event)
            if page:
                last_seq = page[-1]["seq"]
            if len(page) < SYNC_PAGE:
                break
        await self.send_frame({"type": frames.SYNCED, "ref": ref, "last_seq": max(last_seq, newest)})

    # --- frames to the client -----------------------------------------------------------

    async def send_frame(self, frame: dict) -> None:
        """A frame to this socket alone (ack, receipt, error, sync pages): straight to the
        socket when nothing is queued for it, as broadcasts go (rooms.transport)."""
        text = dumps(frame)
        if not self.push_now(prepare(text)):
            await self.push(text)

    async def send_error(self, ref, code: str, message: str, **extra) -> None:
        await self.send_frame({"type": frames.ERROR, "ref": ref, "code": code, "message": str(message), **extra})

    def push_now(self, frame: bytes) -> bool:
        """The hub's fast lane: writes a frame prepared once per broadcast straight to the
        socket when nothing is queued for it (``rooms.transport.write_now``). False when
        the frame must go through ``push`` instead (a backlog, closing, not under daphne)."""
        if self._closing or self._protocol is None or self._held is not None:
            return False
        return write_now(self._protocol, frame)

    async def push(self, text: str) -> None:
        """Called by the hub for every broadcast: one already-serialised frame."""
        if self._closing:
            return
        if self._held is not None:
            self._held.append(text)
            return
        if self._protocol is not None and not is_open(self._protocol):
            return  # closing under us (the client's close or a dropped handshake): it will sync
        if self._protocol is not None and backlog_bytes(self._protocol) > settings.PALABRE_MAX_BACKLOG_BYTES:
            logger.info("closing a connection that fell behind (member %s)", self.conn and self.conn.member_id)
            # The close frame queues behind that backlog: autobahn's 1 s close handshake would
            # drop the socket before a client that reads again reaches it, and it would never
            # learn 4409. A client that never reads is still dropped, after this grace.
            self._protocol.closeHandshakeTimeout = settings.PALABRE_SLOW_CLOSE_GRACE_S
            await self.close(code=frames.CLOSE_TOO_SLOW)
            return
        await self.base_send({"type": "websocket.send", "text": text})

    async def close(self, code=None, reason=None):
        if self._closing:
            return
        self._closing = True
        if self.conn is not None:
            get_hub().leave(self)
        await super().close(code=code, reason=reason)
