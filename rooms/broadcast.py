"""Fan-out after commit (Zulip's ``send_event_on_commit``): only services call these, so a
rolled-back write never reaches a client. Each broadcast is serialised to JSON once here
and crosses the channel layer once per subscribed process (the room hub, ``rooms.hub``).
Broadcast is best effort: the log is the truth and clients fill gaps with ``sync``.
"""

import asyncio
import json
import logging
import os

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger("palabre.broadcast")

DIRECT_GROUP = "palabre.direct"


def room_group(room_id) -> str:
    return f"palabre.room.{room_id}"


def dumps(frame: dict) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def _send(group: str, message: dict) -> None:
    """Publishes after commit. From the database thread of a process whose event loop runs
    a room hub, the message is handed to that loop's outbox and the thread goes on: it
    no longer waits for the channel layer (a fifth of its time per chat message, see
    BENCHMARKS.md), and the outbox publishes in the order the commits handed them over.
    Elsewhere (the worker, commands), it is published before returning."""
    outbox = _outboxes.get(_calling_loop())
    if outbox is not None:
        outbox.put(group, message)
        return
    _send_now(group, message)


def _send_now(group: str, message: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, message)
    except Exception:  # noqa: BLE001 - the channel layer being down must not undo a commit
        logger.warning("broadcast to %s failed; clients will catch up with sync", group, exc_info=True)


def _calling_loop():
    """The event loop that called this thread through ``sync_to_async``, if any."""
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    return getattr(SyncToAsync.threadlocal, "main_event_loop", None)


class Outbox:
    """One per event loop that runs a room hub: broadcasts handed over by its database
    thread, published one after the other by one task, so none overtakes another.

    What waited while the previous publish was under way goes out together: a run of
    room frames becomes one ``hub.rooms`` message on the process-wide group, which every
    hub reads and keeps the frames of its own rooms from. A chat batch in many small
    rooms was one publish per frame and one receive per frame on every process, a third
    of a daphne's CPU on Redis (py-spy, 100 rooms x 10, 2 processes); now it is one per
    batch. A lone frame still goes to its room's group only."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()

    def put(self, group: str, message: dict) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, message))

    async def run(self) -> None:
        layer = get_channel_layer()
        _outboxes[self.loop] = self
        try:
            while True:
                waiting = [await self.queue.get()]
                while not self.queue.empty() and len(waiting) < OUTBOX_BATCH:
                    waiting.append(self.queue.get_nowait())
                for group, message in coalesced(waiting):
                    try:
                        await layer.group_send(group, message)
                    except Exception:  # noqa: BLE001 - as _send_now: the log is the truth
                        logger.warning("broadcast to %s failed; clients will catch up with sync", group, exc_info=True)
        finally:
            _outboxes.pop(self.loop, None)


# Frames in one hub.rooms message at most (a chat batch is at most 200 messages).
OUTBOX_BATCH = 500


def coalesced(waiting: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """``waiting`` in order, each run of two or more room frames made one ``hub.rooms``
    message to the process-wide group."""
    out: list[tuple[str, dict]] = []
    run: list[dict] = []

    def close_run():
        if len(run) == 1:
            out.append((room_group(run[0]["room_id"]), run[0]))
        elif run:
            frames = [[m["room_id"], m["seq"], m["text"]] for m in run]
            out.append((DIRECT_GROUP, {"type": "hub.rooms", "frames": frames}))
        run.clear()

    for group, message in waiting:
        if message.get("type") == "hub.room":
            run.append(message)
        else:
            close_run()
            out.append((group, message))
    close_run()
    return out


_outboxes: dict[asyncio.AbstractEventLoop, Outbox] = {}


def to_room(room_id, frame: dict) -> None:
    """After commit: ``frame`` to every connection of the room, on every process."""
    message = {"type": "hub.room", "room_id": str(room_id), "seq": frame.get("seq"), "text": dumps(frame)}
    transaction.on_commit(lambda: _send(room_group(room_id), message))


def to_room_now(room_id, frame: dict) -> None:
    """Now, not on commit: only for a frame that writes nothing and shows state already
    committed (e.g. turnout), sent while its caller holds the lock that orders it before
    a later event (``ballots.services.ballot_progress_publish``)."""
    message = {"type": "hub.room", "room_id": str(room_id), "seq": frame.get("seq"), "text": dumps(frame)}
    _send_now(room_group(room_id), message)


def to_member(member_id, frame: dict) -> None:
    """After commit: ``frame`` to every connection of one member, on every process."""
    message = {"type": "hub.member", "member_id": str(member_id), "text": dumps(frame)}
    transaction.on_commit(lambda: _send(DIRECT_GROUP, message))


def close_user_sockets(user_id, code: int) -> None:
    """After commit: close every socket of a user (logout), on every process."""
    message = {"type": "hub.close_user", "user_id": str(user_id), "code": code}
    transaction.on_commit(lambda: _send(DIRECT_GROUP, message))
