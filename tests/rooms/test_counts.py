"""room.counts (PROTOCOL.md): members and who is online, coalesced, from every process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from asgiref.sync import sync_to_async

from rooms.hub import PRESENCE_TTL_S, counts_interval, online_total
from tests.conftest import connect

pytestmark = pytest.mark.django_db(transaction=True)


async def counts(sock) -> dict:
    return await sock.recv_until("room.counts", timeout=5)


async def test_members_see_who_is_online_and_how_many_members(plenary, mediator, consumer, consumers):
    await sync_to_async(consumers)(2)  # admitted, not connected: members, not online
    med = await connect(plenary, mediator)
    assert await counts(med) == {"type": "room.counts", "members_count": 4, "online_count": 1}
    alice = await connect(plenary, consumer)
    assert (await counts(med))["online_count"] == 2
    assert await counts(alice) == {"type": "room.counts", "members_count": 4, "online_count": 2}
    await alice.close()
    assert (await counts(med))["online_count"] == 1
    await med.close()


async def test_a_caucus_counts_its_two_members(mediation, mediator, consumer):
    from rooms.services import room_create

    caucus = await sync_to_async(room_create)(mediation=mediation, kind="caucus", title="Aparté", caucus_member=consumer)
    med = await connect(caucus, mediator)
    alice = await connect(caucus, consumer)
    frame = await counts(alice)
    assert frame["members_count"] == 2 and frame["online_count"] in (1, 2)
    while frame["online_count"] != 2:
        frame = await counts(alice)
    await med.close()
    await alice.close()


def test_the_online_count_adds_the_processes_and_forgets_a_silent_one():
    now = 1000.0
    said = {"a": (3, now - 1), "b": (5, now - PRESENCE_TTL_S + 1), "dead": (7, now - PRESENCE_TTL_S - 1)}
    assert online_total(said, now) == 8


def test_counts_come_less_often_in_big_rooms():
    assert counts_interval(10) == 1.0
    assert counts_interval(5_000) == 5.0
    assert counts_interval(150_000) == 10.0


async def test_a_heartbeat_tells_every_process_the_sockets_of_all_rooms_in_one_message(monkeypatch):
    from rooms import hub as hub_module
    from rooms.broadcast import DIRECT_GROUP

    sent = []
    beat = asyncio.Event()

    class Layer:
        async def group_send(self, group, message):
            sent.append((group, message))
            beat.set()

    monkeypatch.setattr(hub_module, "PRESENCE_EVERY_S", 0)
    hub = hub_module.Hub()
    hub.layer, hub.channel = Layer(), "hub.me"
    hub.rooms["7"].update({object(), object()})
    hub.rooms["8"].add(object())
    task = asyncio.create_task(hub._presence_heartbeat())
    await asyncio.wait_for(beat.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert sent[0] == (DIRECT_GROUP, {"type": "hub.presence_all", "hub": "hub.me", "online": {"7": 2, "8": 1}})


async def test_a_heartbeat_counts_for_the_rooms_this_process_serves_only():
    from rooms.hub import Hub

    hub = Hub()
    hub.channel = "hub.me"
    hub.rooms["7"].add(object())

    await hub.dispatch({"type": "hub.presence_all", "hub": "hub.other", "online": {"7": 5, "9": 3}})

    assert online_total(hub._presence["7"], time.monotonic()) == 5
    assert "9" not in hub._presence
    for handle in hub._coalesced.values():
        handle.cancel()


class Socket:
    """A connection as the hub sees it, in a caucus (two members: no database read)."""

    def __init__(self, name):
        self.room_id, self.member_id, self.user_id = "7", name, name
        self.mediation_id, self.plenary = "1", False
        self.got: list[dict] = []

    def push_now(self, frame: bytes) -> bool:
        return False

    async def push(self, text: str) -> None:
        self.got.append(json.loads(text))


async def test_counts_that_did_not_change_go_only_to_the_sockets_that_joined_since():
    """An idle room of 150,000 must not be sent the same counts every few seconds; a
    socket that joined since still gets them once."""
    from rooms.broadcast import DIRECT_GROUP, room_group
    from rooms.hub import Hub

    hub = Hub()
    hub.channel = "hub.me"
    hub._subscribed = {DIRECT_GROUP, room_group("7")}
    alice, bob, carol = Socket("alice"), Socket("bob"), Socket("carol")

    async def heard(hub_name, online):
        await hub.dispatch({"type": "hub.presence", "room_id": "7", "hub": hub_name, "online": online})
        await hub._send_counts("7")  # what the coalesced timer runs

    try:
        await hub.join(alice)
        await hub.join(bob)
        await heard("hub.me", 2)
        assert alice.got == bob.got == [{"type": "room.counts", "members_count": 2, "online_count": 2}]

        await heard("hub.me", 2)  # a heartbeat, nothing changed
        assert len(alice.got) == len(bob.got) == 1

        hub.leave(alice)
        await hub.join(carol)
        await heard("hub.me", 2)  # one left, one came: the same counts
        assert len(bob.got) == 1
        assert carol.got == [{"type": "room.counts", "members_count": 2, "online_count": 2}]

        await heard("hub.other", 1)  # another process's socket: changed, to everyone here
        assert bob.got[-1] == carol.got[-1] == {"type": "room.counts", "members_count": 2, "online_count": 3}
        assert len(alice.got) == 1
    finally:
        for handle in hub._coalesced.values():
            handle.cancel()
