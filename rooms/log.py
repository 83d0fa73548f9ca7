"""The room log: append (encrypting free text) and read back as protocol frames.

Seq allocation: ``UPDATE room SET last_seq = last_seq + n ... RETURNING`` (one statement
for every room of a batch) inside the transaction that inserts the events. The UPDATE
takes each room row's write lock until commit, so two writers on any number of processes get distinct consecutive numbers, and
a rolled-back insert rolls the increment back with it: the log stays gapless (1, 2, 3 …).
Events are only ever broadcast after that commit (``rooms.broadcast``).
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.utils import timezone

from crypto import aead, keyring
from crypto.errors import CryptoError, TamperedError
from rooms import rows
from rooms.models import Event, Room

logger = logging.getLogger("palabre.log")


def new_wrapped_key() -> tuple[str, bytes]:
    return keyring.wrap_data_key(aead.new_data_key())


def _data_key(key_id: str, wrapped: bytes) -> bytes:
    return _cached_data_key(getattr(settings, keyring.SETTING, ""), key_id, wrapped)


@lru_cache(maxsize=4096)
def _cached_data_key(ring: str, key_id: str, wrapped: bytes) -> bytes:
    # Keyed on the wrapped bytes read from the row on every use: a shredded room (NULL
    # wrapped key) can never hit the cache, whichever process shredded it. Keyed on the
    # ring too: a key replaced or retired from the ring stops unwrapping at once.
    return keyring.unwrap_data_key(key_id, wrapped)


def room_data_key(room: Room) -> bytes | None:
    """The room's data key; None once shredded. Raises CryptoError when the master key
    that wrapped it is missing from the ring or is not the one it was wrapped with: an
    operator's error to fix, not data to give up on (callers answer ``unavailable``)."""
    if room.wrapped_key is None:
        return None
    return _data_key(room.master_key_id, bytes(room.wrapped_key))


def iso(dt) -> str:
    return dt.isoformat()


def append(
    *,
    room_id: int,
    type: str,
    data: dict,
    secret: dict | None = None,
    author_id: int | None = None,
) -> dict:
    """Appends one event and returns its frame. Must run inside ``transaction.atomic``:
    the room row stays locked until the caller commits."""
    entry = {"type": type, "data": data, "secret": secret, "author_id": author_id}
    return append_to_rooms({room_id: [entry]})[room_id][0]


def append_to_rooms(entries_by_room: dict[int, list[dict]]) -> dict[int, list[dict]]:
    """Appends events to several rooms and returns each room's frames in order; each
    entry holds ``append``'s keyword arguments but the room. One statement allocates
    every room's seqs (``_allocate``), one INSERT writes all their events (a chat batch
    spans many rooms). Same contract as ``append``: inside ``transaction.atomic``.

    From the allocation to the commit the batch's rooms are locked, and another process
    writing to any of them waits: with two daphnes sharing 100 rooms, those locked spans
    followed one another and set the ceiling of chat (BENCHMARKS.md, many small rooms).
    So everything that does not depend on a seq (the rows, the frames, the plaintext to
    encrypt) is done before it; after it, only the seq and the ciphertext it binds."""
    at = timezone.now()
    pending = []
    for room_id in sorted(entries_by_room):
        for entry in entries_by_room[room_id]:
            secret = entry.get("secret")
            event = Event(
                room_id=room_id,
                type=entry["type"],
                at=at,
                author_id=entry.get("author_id"),
                data=entry["data"],
                ciphertext=None,
                secret_fields=_paths(secret) if secret else [],
            )
            plaintext = json.dumps(secret, ensure_ascii=False, separators=(",", ":")) if secret else None
            pending.append((event, plaintext, _merge(entry["data"], secret or {})))
    allocated = _allocate({room_id: len(entries) for room_id, entries in entries_by_room.items()})
    next_seq = {room_id: last - len(entries_by_room[room_id]) + 1 for room_id, (last, _w, _k) in allocated.items()}
    for event, plaintext, _merged in pending:
        event.seq = next_seq[event.room_id]
        next_seq[event.room_id] += 1
        if plaintext is not None:
            _, wrapped, key_id = allocated[event.room_id]
            event.ciphertext = _encrypt(event, plaintext, wrapped, key_id)
    _insert_events([event for event, _p, _m in pending])
    frames: dict[int, list[dict]] = {room_id: [] for room_id in entries_by_room}
    for event, _plaintext, merged in pending:
        frames[event.room_id].append(_frame(event, merged=merged))
    return frames


# Rooms per statement: three parameters each, within SQLite's 999.
_ALLOCATE_CHUNK = 300


def _allocate(counts: dict[int, int]) -> dict[int, tuple[int, bytes | None, str]]:
    """Adds ``counts[room]`` to each room's ``last_seq``: {room: (new last_seq, wrapped
    key, master key id)}. A batch of chat in many rooms took one UPDATE per room, each a
    round trip through the database driver; here it is one UPDATE ... CASE for all. Rows
    are locked in id order so two processes never wait on each other in opposite orders:
    on PostgreSQL the UPDATE takes its rows from a SELECT ... ORDER BY id FOR UPDATE (an
    UPDATE alone locks in whatever order its plan visits rows), in the same statement:
    the locks are held from that round trip to the commit, and one fewer of them is one
    less wait for the other process. SQLite's IMMEDIATE transaction already holds the
    whole database's write lock."""
    table = connection.ops.quote_name(Room._meta.db_table)
    allocated = {}
    room_ids = sorted(counts)
    with rows.cursor(connection) as cursor:
        for start in range(0, len(room_ids), _ALLOCATE_CHUNK):
            chunk = room_ids[start : start + _ALLOCATE_CHUNK]
            n = len(chunk)
            pairs = rows.marks(connection, 2 * n).split(", ")
            cases = " ".join(f"WHEN {pairs[2 * i]} THEN {pairs[2 * i + 1]}" for i in range(n))
            ids = rows.marks(connection, n, start=2 * n)
            if n > 1 and connection.features.has_select_for_update:
                sql = (
                    f"WITH locked AS MATERIALIZED (SELECT id FROM {table} WHERE id IN ({ids}) ORDER BY id FOR UPDATE) "
                    f"UPDATE {table} SET last_seq = last_seq + CASE {table}.id {cases} END FROM locked "
                    f"WHERE {table}.id = locked.id RETURNING {table}.id, last_seq, wrapped_key, master_key_id"
                )
            else:
                sql = (
                    f"UPDATE {table} SET last_seq = last_seq + CASE id {cases} END "
                    f"WHERE id IN ({ids}) RETURNING id, last_seq, wrapped_key, master_key_id"
                )
            cursor.execute(sql, [value for room_id in chunk for value in (room_id, counts[room_id])] + chunk)
            allocated.update((row[0], row[1:]) for row in cursor.fetchall())
    return allocated


def _encrypt(event: Event, plaintext: str, wrapped, key_id) -> bytes:
    if wrapped is None:
        raise CryptoError("this room's key is shredded: nothing can be written to it")
    key = _data_key(key_id, bytes(wrapped))
    return aead.encrypt(
        key, plaintext, aad=aead.associated_data(room_id=str(event.room_id), seq=event.seq, event_type=event.type)
    )


_insert_events = rows.Insert(Event)


def event_frame(event: Event, data_key: bytes | None) -> dict:
    """The frame of a stored event. A redacted, shredded or unreadable event keeps its
    shape, its free-text fields null, and says which (``redacted``/``shredded``/
    ``unreadable``: true).

    Unreadable: the stored ciphertext fails authentication under the room's key (altered
    bytes, or a ciphertext moved from another room or seq). Such a row is shown in its
    place rather than failing the whole page, so one damaged event never blocks a
    member's history or ``sync``; its text is never guessed at."""
    if not event.secret_fields:
        return _frame(event, merged=event.data)
    if event.redacted_at is not None or event.ciphertext is None:
        return _blanked(event, "redacted")
    if data_key is None:
        return _blanked(event, "shredded")
    try:
        plaintext = aead.decrypt(
            data_key,
            bytes(event.ciphertext),
            aad=aead.associated_data(room_id=str(event.room_id), seq=event.seq, event_type=event.type),
        )
    except TamperedError:
        logger.error(
            "event %s#%s (%s) failed authentication: altered or moved ciphertext; shown as unreadable",
            event.room_id,
            event.seq,
            event.type,
        )
        return _blanked(event, "unreadable")
    return _frame(event, merged=_merge(event.data, json.loads(plaintext)))


def _blanked(event: Event, why: str) -> dict:
    return {**_frame(event, merged=_merge(event.data, _blank(event.secret_fields))), why: True}


def _frame(event: Event, *, merged: dict) -> dict:
    frame = {"type": event.type, "seq": event.seq, "at": iso(event.at), **merged}
    if event.type == "chat.message":
        frame["id"] = str(event.pk)
    return frame


def _merge(data: dict, secret: dict) -> dict:
    out = _copy(data)
    for key, value in secret.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _copy(value):
    """A copy of a JSON tree: ``copy.deepcopy`` without its memo and type dispatch, which
    showed in py-spy per chat frame (many small rooms)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _paths(secret: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in secret.items():
        if isinstance(value, dict):
            paths += _paths(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


def _blank(paths: list[str]) -> dict:
    out: dict = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = None
    return out


def events_after(room: Room, after_seq: int, limit: int) -> list[dict]:
    key = room_data_key(room)
    events = Event.objects.filter(room_id=room.pk, seq__gt=after_seq).order_by("seq")[:limit]
    return [event_frame(e, key) for e in events]
