"""The room hub: one per process (DESIGN.md, "Real time and scale").

The process, not each connection, listens on the channel layer: one channel per process,
added once to the group of each room that has a local connection, and to one process-wide
group for frames addressed to a member or a user. A broadcast arrives here once per
process, already serialised (``rooms.broadcast``), and the same text is written to every
local socket of the room. A connection whose unsent backlog passes a bound is closed with
4409: it reconnects and syncs, and the room never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter, defaultdict

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from rooms import frames
from rooms.broadcast import DIRECT_GROUP, Outbox, dumps, room_group
from rooms.services import members_count_recent
from rooms.transport import prepare

logger = logging.getLogger("palabre.hub")

# channels' layers forget group members after group_expiry (one day by default): renew.
RENEW_GROUPS_EVERY_S = 600

# room.counts (PROTOCOL.md: coalesced, at most one a second per room). Each process tells
# the room how many of its sockets are in it when that changes (at most once a second)
# and every PRESENCE_EVERY_S anyway; a process not heard of for PRESENCE_TTL_S (it died)
# no longer counts. The online count is the sum of what the processes said. A room's
# counts go to its members at most once a second, and less often in big rooms (one
# second per 1,000 local sockets, up to COUNTS_MAX_INTERVAL_S): a reconnect storm of
# 150,000 must not become 150,000 frames a second of counts. Counts that did not change
# go only to the sockets that joined since they were last sent: an idle room of 150,000
# is not sent 15,000 frames a second of the same counts (BENCHMARKS.md, "Idle members").
PRESENCE_EVERY_S = 10.0
PRESENCE_TTL_S = 3.5 * PRESENCE_EVERY_S
COUNTS_MAX_INTERVAL_S = 10.0

# How long a subscription may take to be confirmed, and how often it is probed meanwhile
# (``Hub._heard_through``).
PROBE_TIMEOUT_S = 5.0
PROBE_EVERY_S = 0.05


def online_total(said: dict[str, tuple[int, float]], now: float) -> int:
    """The room's online count from what each process said and when."""
    return sum(count for count, at in said.values() if now - at < PRESENCE_TTL_S)


def counts_interval(local_sockets: int) -> float:
    return min(COUNTS_MAX_INTERVAL_S, max(1.0, local_sockets / 1_000))


class Hub:
    def __init__(self):
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.rooms: dict[str, set] = defaultdict(set)
        # A member or a user has one socket or a few: lists, a third of a set's memory
        # per connection (BENCHMARKS.md, memory per idle connection).
        self.members: dict[str, list] = defaultdict(list)
        self.users: dict[str, list] = defaultdict(list)
        self._subscribed: set[str] = set()
        self._start_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._coalesced: dict[str, asyncio.Handle] = {}
        self._order: dict[str, _RoomOrder] = {}
        self._delivering = asyncio.Lock()
        self._presence: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
        self._room_meta: dict[str, tuple[str, bool]] = {}
        self._counts_sent: dict[str, str] = {}  # room -> the counts frame its sockets have
        # room -> sockets joined since, and still there: while the layer is down no counts
        # go out, and the sockets of a reconnect loop must not pile up here meanwhile.
        self._counts_due: dict[str, set] = defaultdict(set)
        self._probes: dict[str, asyncio.Future] = {}
        self._holding: Counter[str] = Counter()  # room -> sockets held, not joined yet (``hold``)

    # --- lifecycle -----------------------------------------------------------------

    async def _ensure_started(self) -> None:
        if self.channel is not None:
            return
        async with self._start_lock:
            if self.channel is not None:
                return
            channel = await self.layer.new_channel("palabre.hub.")
            self.channel = channel
            # Reading first: a subscription is confirmed by a probe the reader hears.
            self._tasks.append(asyncio.create_task(self._read(), name="palabre-hub-reader"))
            await self._subscribe(DIRECT_GROUP)
            self._tasks.append(asyncio.create_task(Outbox(asyncio.get_running_loop()).run(), name="palabre-outbox"))
            self._tasks.append(asyncio.create_task(self._renew(), name="palabre-hub-renew"))
            self._tasks.append(asyncio.create_task(self._presence_heartbeat(), name="palabre-hub-presence"))
            if settings.PALABRE_INPROCESS_DEADLINES:
                self._tasks.append(asyncio.create_task(self._deadlines(), name="palabre-deadlines"))

    async def _subscribe(self, group: str) -> None:
        try:
            await self.layer.group_add(group, self.channel)
            await self._heard_through(group)
            self._subscribed.add(group)
        except Exception:  # noqa: BLE001 - the layer may be down; the next join or renewal retries
            logger.warning("could not subscribe to %s; will retry", group, exc_info=True)

    async def _heard_through(self, group: str) -> None:
        """Returns once a probe sent to ``group`` came back to this hub. Redis pub/sub
        sends SUBSCRIBE without waiting for its answer, and ``join`` promises that the
        subscription is live before the welcome reads ``last_seq``: a probe heard proves
        it. A probe that went before the subscription is lost, so it is sent again until
        one is heard (other processes ignore them)."""
        token = uuid.uuid4().hex
        heard = self._probes[token] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                while not heard.done():
                    await self.layer.group_send(group, {"type": "hub.probe", "token": token})
                    await asyncio.wait([heard], timeout=PROBE_EVERY_S)
        finally:
            self._probes.pop(token, None)

    async def _resubscribe_all(self) -> None:
        groups = {DIRECT_GROUP, *(room_group(r) for r, conns in self.rooms.items() if conns)}
        for group in groups:
            await self.layer.group_add(group, self.channel)
        self._subscribed = groups

    # --- connections ---------------------------------------------------------------

    async def join(self, conn) -> None:
        """Subscribes the process to the room before the caller reads ``last_seq`` for
        its welcome: an event committed after that read is then sure to arrive live."""
        await self._ensure_started()
        # The process-wide group too, if the layer was down when the hub started: it
        # carries member frames and batched room frames (rooms.broadcast.Outbox).
        for group in (DIRECT_GROUP, room_group(conn.room_id)):
            if group not in self._subscribed:
                await self._subscribe(group)
        conns = self.rooms[conn.room_id]
        if conn in conns:  # held since before its handshake's read
            self._unhold(conn.room_id)
        conns.add(conn)
        self.members[conn.member_id].append(conn)
        self.users[conn.user_id].append(conn)
        self._room_meta[conn.room_id] = (conn.mediation_id, conn.plenary)
        self._counts_due[conn.room_id].add(conn)
        self._presence_changed(conn.room_id)

    def hold(self, conn, room_id: str) -> bool:
        """A socket whose handshake is not read yet, to a room this process already
        listens to: the room's frames reach it from now on (it holds them until its
        welcome is sent), so a welcome read after this is one an event committed later
        is sure to follow, as after ``join``, and the handshake reads everything in one
        trip. False, and nothing registered, when the process does not listen to the room
        yet: an unchecked handshake never makes it subscribe (``join`` does, once the
        socket is let in). ``join`` or ``release`` follows."""
        if room_group(room_id) not in self._subscribed:
            return False
        self.rooms[room_id].add(conn)
        self._holding[room_id] += 1  # not online yet: not counted
        return True

    def release(self, conn, room_id: str) -> None:
        """Undoes ``hold`` for a socket that was not let in."""
        self._unhold(room_id)
        conns = self.rooms.get(room_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.rooms[room_id]

    def _unhold(self, room_id: str) -> None:
        self._holding[room_id] -= 1
        if self._holding[room_id] <= 0:
            del self._holding[room_id]

    def leave(self, conn) -> None:
        # The process stays subscribed to a room it no longer serves until the next
        # renewal: a join racing a leave never finds itself unsubscribed.
        for index, key in (
            (self.rooms, conn.room_id),
            (self.members, conn.member_id),
            (self.users, conn.user_id),
            (self._counts_due, conn.room_id),
        ):
            conns = index.get(key)
            if conns is not None:
                with contextlib.suppress(KeyError, ValueError):  # a set's, a list's: not there
                    conns.remove(conn)
                if not conns:
                    del index[key]
        if self.channel is not None:
            self._presence_changed(conn.room_id)

    def sockets_of_user(self, user_id: str) -> int:
        return len(self.users.get(user_id, ()))

    def local_count(self, room_id: str) -> int:
        return len(self.rooms.get(room_id, ())) - self._holding.get(room_id, 0)

    # --- delivery ------------------------------------------------------------------

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - e.g. Redis restarting; retry, then resubscribe
                logger.warning("channel layer receive failed; retrying in %.1fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                try:
                    await self._resubscribe_all()
                except Exception:  # noqa: BLE001
                    continue
                continue
            backoff = 0.1
            try:
                await self.dispatch(message)
            except Exception:  # noqa: BLE001 - one bad message never stops the hub
                logger.exception("hub dispatch failed")

    async def dispatch(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "hub.room":
            await self.room_frame(message["room_id"], message.get("seq"), message["text"])
        elif kind == "hub.rooms":
            # Every process hears these (rooms.broadcast.Outbox): each keeps the frames
            # of the rooms it serves, or has served and still keeps in order.
            for room_id, seq, text in message["frames"]:
                if room_id in self.rooms or room_id in self._order:
                    await self.room_frame(room_id, seq, text)
        elif kind == "hub.member":
            await self.deliver(self.members.get(message["member_id"], ()), message["text"])
        elif kind == "hub.presence":
            self._presence_heard(message["room_id"], message["hub"], int(message["online"]))
        elif kind == "hub.presence_all":
            # A process's heartbeat: its sockets in every room it serves. Heard for the
            # rooms this process serves or still counts, as a room's own presence is.
            for room_id, online in message["online"].items():
                if room_id in self.rooms or room_id in self._presence:
                    self._presence_heard(room_id, message["hub"], int(online))
        elif kind == "hub.probe":
            heard = self._probes.get(message["token"])
            if heard is not None and not heard.done():
                heard.set_result(None)
        elif kind == "hub.close_user":
            for conn in list(self.users.get(message["user_id"], ())):
                await conn.close(code=message["code"])

    # --- logged frames in seq order --------------------------------------------------
    #
    # Two events of a room committed by different processes a moment apart are published
    # by each after its own commit: seq 40 may cross the channel layer before seq 39. The
    # hub holds a frame that comes early until the one before it arrives, so every member
    # sees the log in order; if that one never comes (a broadcast lost, a layer restart),
    # it gives up after REORDER_WINDOW_S and delivers what it holds: clients fill that gap
    # with sync. Frames without a seq (counts, turnout) are never held.

    def expect(self, room_id: str, seq: int) -> None:
        """The seq that comes next in a room this process has just started to serve (read
        with a welcome's ``last_seq``), so the very first frames are put in order too."""
        order = self._order.setdefault(room_id, _RoomOrder())
        if order.expected is None:
            order.expected = seq

    async def room_frame(self, room_id: str, seq: int | None, text: str) -> None:
        async with self._delivering:
            order = self._order.get(room_id)
            if seq is None:
                ready = [text]
            elif order is None or order.expected is None or seq < order.expected:
                # The first frame seen for the room, or one already given up on: as it comes.
                if order is None:
                    order = self._order[room_id] = _RoomOrder()
                if order.expected is None or seq >= order.expected:
                    order.expected = seq + 1
                ready = [text]
            elif seq == order.expected:
                ready = [text]
                order.expected += 1
                while order.expected in order.held:
                    ready.append(order.held.pop(order.expected))
                    order.expected += 1
                if order.timer is not None:
                    order.timer.cancel()
                    order.timer = None
                if order.held:
                    # Another gap: it gets a whole window of its own, not what is left of
                    # the one just filled (two processes writing one room at once open
                    # gap after gap; the old timer gave up on them early).
                    self._wait_for(room_id, order)
            else:
                order.held[seq] = text
                if order.timer is None:
                    self._wait_for(room_id, order)
                ready = []
            for frame_text in ready:
                await self.deliver(self.rooms.get(room_id, ()), frame_text)

    def _wait_for(self, room_id: str, order: _RoomOrder) -> None:
        loop = asyncio.get_running_loop()
        order.timer = loop.call_later(
            settings.PALABRE_REORDER_WINDOW_S,
            lambda: loop.create_task(self._stop_waiting(room_id)).add_done_callback(_log_failure),
        )

    async def _stop_waiting(self, room_id: str) -> None:
        async with self._delivering:
            order = self._order.get(room_id)
            if order is None or not order.held:
                return
            order.timer = None
            seqs = sorted(order.held)
            logger.info("room %s: seq %s never arrived; delivering %s on", room_id, order.expected, seqs[0])
            ready = [order.held.pop(s) for s in seqs]
            order.expected = seqs[-1] + 1
            for frame_text in ready:
                await self.deliver(self.rooms.get(room_id, ()), frame_text)

    async def deliver(self, conns, text: str) -> None:
        # Framed once for the whole room and written straight to every socket that has
        # nothing queued (the fast lane, rooms.transport: why, and when it falls back);
        # the others get the same text through ASGI send, in order behind their backlog.
        frame = prepare(text)
        failed = 0
        for conn in list(conns):
            try:
                if not conn.push_now(frame):
                    await conn.push(text)
            except Exception:  # noqa: BLE001 - one socket never costs the rest of the room its frame
                failed += 1
                if failed == 1:
                    logger.warning("a delivery failed; the others go on", exc_info=True)

    # --- coalescing (turnout, counts): at most one run per key per interval ----------

    def coalesce(self, key: str, interval: float, callback) -> None:
        """Runs ``callback()`` (a coroutine function) once, ``interval`` seconds from the
        first request for ``key``; requests meanwhile are folded into that one run."""
        if key in self._coalesced:
            return
        loop = asyncio.get_running_loop()

        def fire():
            self._coalesced.pop(key, None)
            task = loop.create_task(callback())
            task.add_done_callback(_log_failure)

        self._coalesced[key] = loop.call_later(interval, fire)

    # --- room.counts ------------------------------------------------------------------

    def _presence_changed(self, room_id: str) -> None:
        self.coalesce(f"presence.{room_id}", 1.0, lambda: self._say_presence(room_id))

    async def _say_presence(self, room_id: str) -> None:
        await self.layer.group_send(
            room_group(room_id),
            {"type": "hub.presence", "room_id": room_id, "hub": self.channel, "online": self.local_count(room_id)},
        )

    def _presence_heard(self, room_id: str, hub: str, online: int) -> None:
        said = self._presence[room_id]
        if hub not in said and hub != self.channel and self.local_count(room_id):
            self._presence_changed(room_id)  # a process new to the room: tell it ours
        said[hub] = (online, time.monotonic())
        if self.local_count(room_id):
            self.coalesce(f"counts.{room_id}", counts_interval(self.local_count(room_id)), lambda: self._send_counts(room_id))
        elif not any(count for count, _at in said.values()):
            self._presence.pop(room_id, None)
            self._room_meta.pop(room_id, None)
            self._counts_sent.pop(room_id, None)

    async def _send_counts(self, room_id: str) -> None:
        conns = self.rooms.get(room_id)
        meta = self._room_meta.get(room_id)
        if not conns or meta is None:
            self._counts_due.pop(room_id, None)
            return
        mediation_id, plenary = meta
        members = await database_sync_to_async(members_count_recent)(mediation_id) if plenary else 2
        online = online_total(self._presence.get(room_id, {}), time.monotonic())
        text = dumps({"type": frames.ROOM_COUNTS, "members_count": members, "online_count": online})
        joined = self._counts_due.pop(room_id, ())
        if text == self._counts_sent.get(room_id):
            conns = [conn for conn in joined if conn in conns]
        self._counts_sent[room_id] = text
        await self.deliver(conns, text)

    async def _presence_heartbeat(self) -> None:
        """Every PRESENCE_EVERY_S, one message to every process with this one's sockets in
        all its rooms. One per room was a burst of as many ``group_send`` (about 1 ms each
        on Redis) every beat, which every frame sent meanwhile waited behind (py-spy, 100
        rooms x 10 on two processes: 12 % of a process's CPU, and the p99)."""
        while True:
            await asyncio.sleep(PRESENCE_EVERY_S)
            online = {room_id: count for room_id in self.rooms if (count := self.local_count(room_id))}
            if not online:
                continue
            try:
                await self.layer.group_send(DIRECT_GROUP, {"type": "hub.presence_all", "hub": self.channel, "online": online})
            except Exception:  # noqa: BLE001 - the layer may be down; the next beat retries
                logger.warning("presence heartbeat not sent", exc_info=True)

    # --- housekeeping ----------------------------------------------------------------

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_GROUPS_EVERY_S)
            try:
                stale = {g for g in self._subscribed if g.startswith("palabre.room.")} - {
                    room_group(r) for r, conns in self.rooms.items() if conns
                }
                # Not listening from the first discard on: a join or a hold meanwhile
                # must not take the room for listened to (it subscribes again).
                self._subscribed -= stale
                for group in stale:
                    await self.layer.group_discard(group, self.channel)
                    # Unsubscribed, it will miss frames: expect nothing in particular next.
                    order = self._order.pop(group.removeprefix(room_group("")), None)
                    if order is not None and order.timer is not None:
                        order.timer.cancel()
                await self._resubscribe_all()
            except Exception:  # noqa: BLE001
                logger.warning("group renewal failed", exc_info=True)

    async def _deadlines(self) -> None:
        from rooms.deadlines import run_once

        while True:
            await asyncio.sleep(1.0)
            try:
                await sync_to_async(run_once, thread_sensitive=True)()
            except Exception:  # noqa: BLE001
                logger.warning("in-process deadline pass failed", exc_info=True)


class _RoomOrder:
    """The next seq the hub expects for a room, and the frames that came before it."""

    __slots__ = ("expected", "held", "timer")

    def __init__(self):
        self.expected: int | None = None
        self.held: dict[int, str] = {}
        self.timer: asyncio.TimerHandle | None = None


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("coalesced callback failed", exc_info=task.exception())


_hubs: dict[int, Hub] = {}


def get_hub() -> Hub:
    """The hub of the running event loop (one per process under daphne; tests that run
    several loops each get their own)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(id(loop))
    if hub is None or hub._loop is not loop:
        hub = Hub()
        hub._loop = loop
        _hubs[id(loop)] = hub
    return hub
