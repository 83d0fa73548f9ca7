"""The room hub delivers a room's logged frames in seq order even when they cross the
channel layer out of order (two processes publishing right after their own commits), and
gives up waiting for one that never comes."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from rooms.hub import Hub


class FakeConn:
    def __init__(self):
        self.got: list[str] = []

    def push_now(self, frame: bytes) -> bool:
        return False

    async def push(self, text: str) -> None:
        self.got.append(text)


@pytest.fixture
def hub(settings):
    settings.PALABRE_REORDER_WINDOW_S = 0.1
    hub = Hub()
    conn = FakeConn()
    hub.rooms["7"].add(conn)
    return hub, conn


async def frame(hub, seq, room="7"):
    await hub.dispatch({"type": "hub.room", "room_id": room, "seq": seq, "text": f"s{seq}"})


async def test_in_order_frames_pass_at_once(hub):
    hub, conn = hub
    for seq in (1, 2, 3):
        await frame(hub, seq)
    assert conn.got == ["s1", "s2", "s3"]


async def test_an_early_frame_waits_for_the_one_before(hub):
    hub, conn = hub
    await frame(hub, 10)
    await frame(hub, 12)
    await frame(hub, 13)
    assert conn.got == ["s10"]
    await frame(hub, 11)
    assert conn.got == ["s10", "s11", "s12", "s13"]
    await asyncio.sleep(0.15)  # no late delivery after the gap closed
    assert conn.got == ["s10", "s11", "s12", "s13"]


async def test_a_frame_that_never_comes_is_given_up_on(hub):
    hub, conn = hub
    await frame(hub, 1)
    await frame(hub, 3)
    await frame(hub, 4)
    assert conn.got == ["s1"]
    await asyncio.sleep(0.2)
    assert conn.got == ["s1", "s3", "s4"]
    await frame(hub, 5)
    await frame(hub, 2)  # too late: delivered as it comes, the client already synced
    assert conn.got == ["s1", "s3", "s4", "s5", "s2"]


async def test_frames_without_seq_are_never_held(hub):
    hub, conn = hub
    await frame(hub, 1)
    await frame(hub, 3)
    await hub.dispatch({"type": "hub.room", "room_id": "7", "seq": None, "text": "counts"})
    assert conn.got == ["s1", "counts"]
    await frame(hub, 2)
    assert conn.got == ["s1", "counts", "s2", "s3"]


async def test_rooms_are_ordered_apart(hub):
    hub, conn = hub
    other = FakeConn()
    hub.rooms["8"].add(other)
    await frame(hub, 1, room="7")
    await frame(hub, 5, room="8")
    await frame(hub, 3, room="7")
    await frame(hub, 6, room="8")
    assert conn.got == ["s1"] and other.got == ["s5", "s6"]


async def test_the_first_frames_are_ordered_from_the_welcome(hub):
    hub, conn = hub
    hub.expect("7", 1)  # a welcome said last_seq 0
    await frame(hub, 2)
    assert conn.got == []
    await frame(hub, 1)
    assert conn.got == ["s1", "s2"]
    hub.expect("7", 1)  # a later welcome changes nothing: the hub already knows
    await frame(hub, 3)
    assert conn.got == ["s1", "s2", "s3"]


async def test_a_second_gap_gets_a_whole_window_of_its_own(hub):
    hub, conn = hub
    await frame(hub, 1)
    await frame(hub, 3)
    await frame(hub, 5)  # gaps at 2 and at 4
    first = hub._order["7"].timer
    await frame(hub, 2)
    assert conn.got == ["s1", "s2", "s3"]
    second = hub._order["7"].timer
    # The window that waited for 2 is gone; 4 is waited for from now, not from when 3 came.
    assert first.cancelled() and second is not first and not second.cancelled()
    assert second.when() >= first.when()
    await frame(hub, 4)
    assert conn.got == ["s1", "s2", "s3", "s4", "s5"]
    assert hub._order["7"].timer is None and second.cancelled()


class JoiningConn(FakeConn):
    def __init__(self, room_id: str):
        super().__init__()
        self.room_id, self.member_id, self.user_id = room_id, f"m{room_id}", f"u{room_id}"
        self.mediation_id, self.plenary = "1", True
        self.arrived = asyncio.Event()

    async def push(self, text: str) -> None:
        await super().push(text)
        self.arrived.set()


class LateSubscriptions:
    """The process's layer, but a group_add takes effect a moment after it returns, as a
    Redis pub/sub SUBSCRIBE does (sent, not awaited)."""

    def __init__(self, layer):
        self.layer = layer

    def __getattr__(self, name):
        return getattr(self.layer, name)

    async def group_add(self, group, channel):
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, lambda: loop.create_task(self.layer.group_add(group, channel)))


async def test_a_frame_published_right_after_a_join_arrives():
    """``join`` returns once the room's subscription is live: what is published right
    after it (a commit that follows the welcome's read of last_seq) reaches the socket."""
    from rooms.broadcast import room_group

    hub = Hub()
    hub.layer = LateSubscriptions(hub.layer)
    conns = [JoiningConn(str(900_000 + i)) for i in range(3)]
    for conn in conns:
        await hub.join(conn)
        await hub.layer.group_send(
            room_group(conn.room_id), {"type": "hub.room", "room_id": conn.room_id, "seq": None, "text": "first"}
        )
    async with asyncio.timeout(5):
        for conn in conns:
            await conn.arrived.wait()
    assert all(conn.got == ["first"] for conn in conns)


def test_a_run_of_room_frames_goes_as_one_message_in_order():
    from rooms.broadcast import DIRECT_GROUP, coalesced, room_group

    def room(r, seq):
        return (room_group(r), {"type": "hub.room", "room_id": r, "seq": seq, "text": f"{r}#{seq}"})

    member = (DIRECT_GROUP, {"type": "hub.member", "member_id": "5", "text": "you"})
    out = coalesced([room("1", 4), room("2", 9), room("1", 5), member, room("3", 1), member, room("1", 6), room("2", 10)])

    assert out == [
        (DIRECT_GROUP, {"type": "hub.rooms", "frames": [["1", 4, "1#4"], ["2", 9, "2#9"], ["1", 5, "1#5"]]}),
        member,
        room("3", 1),  # alone: to its room's group, as before
        member,
        (DIRECT_GROUP, {"type": "hub.rooms", "frames": [["1", 6, "1#6"], ["2", 10, "2#10"]]}),
    ]


async def test_a_hub_keeps_the_frames_of_its_own_rooms_in_order(hub):
    hub, conn = hub
    await hub.dispatch({"type": "hub.rooms", "frames": [["7", 1, "s1"], ["8", 1, "other"], ["7", 3, "s3"]]})
    await hub.dispatch({"type": "hub.rooms", "frames": [["8", 2, "other"], ["7", 2, "s2"]]})
    assert conn.got == ["s1", "s2", "s3"]
    assert "8" not in hub._order  # a room this process does not serve leaves nothing behind


class DownAtFirst(LateSubscriptions):
    """The process's layer, down for the first subscription the hub asks for."""

    def __init__(self, layer):
        super().__init__(layer)
        self.refused = 0

    async def group_add(self, group, channel):
        if not self.refused:
            self.refused += 1
            raise ConnectionError("layer down")
        await self.layer.group_add(group, channel)


async def test_a_hub_started_while_the_layer_was_down_subscribes_at_the_next_join():
    from rooms.broadcast import DIRECT_GROUP

    hub = Hub()
    hub.layer = DownAtFirst(hub.layer)
    conn = JoiningConn("900100")
    await hub.join(conn)  # the process-wide group was refused at start

    assert hub.layer.refused == 1 and DIRECT_GROUP in hub._subscribed
    await hub.layer.group_send(DIRECT_GROUP, {"type": "hub.rooms", "frames": [["900100", None, "batched"]]})
    await asyncio.wait_for(conn.arrived.wait(), 5)
    assert conn.got == ["batched"]


class LayerDown(LateSubscriptions):
    """The process's layer once its subscriptions are made: nothing sent gets through."""

    async def group_send(self, group, message):
        raise ConnectionError("layer down")


async def test_sockets_that_left_while_the_layer_was_down_are_not_kept():
    """No room.counts go out while the layer is down (they wait for presence heard through
    it): the sockets of a reconnect loop meanwhile must not stay alive in the hub."""
    hub = Hub()
    stay = JoiningConn("900200")
    await hub.join(stay)
    hub.layer = LayerDown(hub.layer)
    gone = []
    for _ in range(50):
        conn = JoiningConn("900200")
        await hub.join(conn)
        hub.leave(conn)
        gone.append(weakref.ref(conn))
    del conn
    gc.collect()
    assert [ref for ref in gone if ref() is not None] == []
    assert hub.local_count("900200") == 1


async def test_a_renewal_stops_listening_to_a_room_before_it_unsubscribes(monkeypatch):
    """A room no socket of the process is in any more is let go at the renewal. From its
    first unsubscription on, the hub no longer takes it for listened to: a socket arriving
    meanwhile subscribes again rather than trusting a subscription being undone (its
    welcome would be read while the room's frames no longer reach the process)."""
    from rooms import hub as hub_module
    from rooms.broadcast import DIRECT_GROUP, room_group

    hub = Hub()
    hub.channel = "palabre.hub.test"
    hub._subscribed = {DIRECT_GROUP, room_group("7"), room_group("8")}
    hub.rooms["8"].add(FakeConn())
    renewed = asyncio.Event()
    discarded = []

    class Layer:
        async def group_discard(self, group, channel):
            discarded.append((group, group in hub._subscribed))

        async def group_add(self, group, channel):
            if group == room_group("8"):
                renewed.set()

    hub.layer = Layer()
    monkeypatch.setattr(hub_module, "RENEW_GROUPS_EVERY_S", 0)
    renewal = asyncio.create_task(hub._renew())
    try:
        await asyncio.wait_for(renewed.wait(), 5)
    finally:
        renewal.cancel()
    assert discarded[0] == (room_group("7"), False)
    assert hub._subscribed == {DIRECT_GROUP, room_group("8")}
    assert not hub.hold(FakeConn(), "7") and hub.hold(FakeConn(), "8")
