"""project/layers.py: the embedded default's in-memory channel layer keeps Channels'
contract (groups, expiry, capacity) while it scans for expired entries less often."""

from __future__ import annotations

import asyncio

import pytest

from project import layers


@pytest.fixture
def clock(monkeypatch):
    """Both clocks the layer reads, moved by hand (the event loop keeps its own)."""
    now = {"t": 1_000_000.0}
    monkeypatch.setattr("channels.layers.time.time", lambda: now["t"])
    monkeypatch.setattr("project.layers.monotonic", lambda: now["t"])
    return now


async def test_a_group_message_reaches_every_channel_of_the_group_in_order():
    layer = layers.InMemoryChannelLayer()
    a, b, other = (await layer.new_channel("hub."), await layer.new_channel("hub."), await layer.new_channel("hub."))
    await layer.group_add("room.1", a)
    await layer.group_add("room.1", b)
    await layer.group_add("room.2", other)

    for i in range(3):
        await layer.group_send("room.1", {"type": "hub.room", "n": i})

    for channel in (a, b):
        assert [(await layer.receive(channel))["n"] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(other), 0.05)


async def test_a_full_channel_drops_the_message_and_the_others_still_get_it():
    layer = layers.InMemoryChannelLayer(capacity=1)
    full, free = await layer.new_channel("hub."), await layer.new_channel("hub.")
    await layer.group_add("room.1", full)
    await layer.group_add("room.1", free)
    await layer.send(full, {"type": "first"})

    await layer.group_send("room.1", {"type": "second"})

    assert (await layer.receive(full))["type"] == "first"
    assert (await layer.receive(free))["type"] == "second"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(full), 0.05)


async def test_an_expired_message_is_never_received(clock):
    layer = layers.InMemoryChannelLayer(expiry=60)
    channel = await layer.new_channel("hub.")
    await layer.group_add("room.1", channel)
    await layer.group_send("room.1", {"type": "old"})
    clock["t"] += 30
    await layer.send(channel, {"type": "fresh"})

    clock["t"] += 31  # "old" is 61 s old, "fresh" 31 s

    assert (await layer.receive(channel))["type"] == "fresh"


async def test_group_members_expire_after_group_expiry(clock):
    layer = layers.InMemoryChannelLayer(group_expiry=100)
    channel = await layer.new_channel("hub.")
    await layer.group_add("room.1", channel)
    await layer.group_send("room.1", {"type": "kept"})
    assert (await layer.receive(channel))["type"] == "kept"

    clock["t"] += 101
    await layer.group_send("room.1", {"type": "lost"})

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.05)
