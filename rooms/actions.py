"""Client frame → service call. Each handler reads its fields (``rooms.validate``), calls
the one service that owns the rule, and returns the direct answers to the sender (``ack``,
``vote.receipt``, ``caucus.opened``). Broadcasts are emitted by the services themselves.
Handlers run in a worker thread (they touch the database).

``ballots`` registers its own handlers here when its app loads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from django.conf import settings

from rooms import frames, services, validate
from rooms.errors import ActionError, speaking


@dataclass(frozen=True, slots=True)
class Conn:
    """Who is on the other end of a socket, as fixed at the handshake."""

    user_id: str
    member_id: str
    room_id: str
    mediation_id: str = ""
    plenary: bool = True


Handler = Callable[[Conn, dict, "str | None"], list[dict]]
ACTIONS: dict[str, Handler] = {}


def action(frame_type: str):
    def register(handler: Handler) -> Handler:
        ACTIONS[frame_type] = handler
        return handler

    return register


# Actions a busy process runs several at a time, in one database hop and one transaction
# (rooms.batcher): (conn, frame, ref, language) each, answered in order, each with its
# replies or its ActionError. Every batched type is in ACTIONS too, as a batch of one.
BatchItem = tuple[Conn, dict, "str | None", "str | None"]
BatchHandler = Callable[[list[BatchItem]], list]
BATCHED_ACTIONS: dict[str, BatchHandler] = {}


def batched_action(frame_type: str):
    def register(handler: BatchHandler) -> BatchHandler:
        def one(conn: Conn, frame: dict, ref) -> list[dict]:
            [result] = handler([(conn, frame, ref, None)])
            if isinstance(result, ActionError):
                raise result
            return result

        BATCHED_ACTIONS[frame_type] = handler
        ACTIONS[frame_type] = one
        return handler

    return register


# Run on the event loop after an action succeeded and its replies were sent: for what
# belongs to the process rather than the thread (e.g. coalescing turnout through the hub).
AfterHook = Callable[[Conn, dict, list[dict]], Awaitable[None]]
AFTER_ACTIONS: dict[str, AfterHook] = {}


def after_action(frame_type: str):
    def register(hook: AfterHook) -> AfterHook:
        AFTER_ACTIONS[frame_type] = hook
        return hook

    return register


def ack(ref, frame: dict) -> dict:
    return {"type": frames.ACK, "ref": ref, "seq": frame["seq"]}


@batched_action(frames.CHAT_SEND)
def chat_send_many(items: list[BatchItem]) -> list[list[dict] | ActionError]:
    results: list = [None] * len(items)
    posts, indexes = [], []
    for i, (conn, frame, _ref, language) in enumerate(items):
        try:
            with speaking(language):
                body = validate.string(frame, "body", max_len=settings.PALABRE_MAX_BODY_CHARS)
        except ActionError as error:
            results[i] = error
            continue
        posts.append(services.Post(conn.member_id, conn.room_id, body, language))
        indexes.append(i)
    for i, event in zip(indexes, services.messages_post(posts), strict=True):
        results[i] = event if isinstance(event, ActionError) else [ack(items[i][2], event)]
    return results


@action(frames.MESSAGE_REDACT)
def message_redact(conn: Conn, frame: dict, ref) -> list[dict]:
    seq = validate.integer(frame, "seq", min_value=1)
    event = services.message_redact(member_id=conn.member_id, room_id=conn.room_id, seq=seq)
    return [ack(ref, event)]


@action(frames.MEMBER_MUTE)
def member_mute(conn: Conn, frame: dict, ref) -> list[dict]:
    target = validate.identifier(frame, "member_id")
    until = validate.timestamp(frame, "until")
    event = services.member_mute(member_id=conn.member_id, room_id=conn.room_id, target_id=target, until=until)
    return [ack(ref, event)]


@action(frames.MEMBER_UNMUTE)
def member_unmute(conn: Conn, frame: dict, ref) -> list[dict]:
    target = validate.identifier(frame, "member_id")
    event = services.member_unmute(member_id=conn.member_id, room_id=conn.room_id, target_id=target)
    return [ack(ref, event)]


@action(frames.ROOM_MODERATE)
def room_moderate(conn: Conn, frame: dict, ref) -> list[dict]:
    moderated = validate.boolean(frame, "moderated")
    event = services.room_moderate(member_id=conn.member_id, room_id=conn.room_id, moderated=moderated)
    return [ack(ref, event)]


@action(frames.CAUCUS_OPEN)
def caucus_open(conn: Conn, frame: dict, ref) -> list[dict]:
    target = validate.identifier(frame, "member_id")
    room, _mediator, member = services.caucus_open(member_id=conn.member_id, room_id=conn.room_id, target_id=target)
    return [services.caucus_opened_frame(room=room, with_member=member, ref=ref)]
