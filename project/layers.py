"""The embedded default's channel layer: Channels' in-memory layer, without two costs
that grow with every broadcast.

Channels' ``InMemoryChannelLayer`` scans every channel's queue and every group's members
for expired entries at each ``receive`` and ``group_send``, and its ``group_send`` starts
a task per channel and waits on them with ``as_completed``. In Palabre a group has one
channel (the room hub of the one process), and a broadcast is one ``group_send``: the scan
alone was 5 % of the process's CPU in the many-small-rooms benchmark (py-spy, 100 rooms,
one hub channel per room group), and issue 8 names it as a cost to remove. Here the scan
runs at most once a second (a message still expires after ``expiry``, within a second of
it; a group membership after ``group_expiry``) and ``group_send`` puts the message on each
channel in turn (``send`` never waits: a full channel drops it, as Channels does).
"""

from __future__ import annotations

from time import monotonic

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer

CLEAN_EVERY_S = 1.0


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_clean = 0.0

    def _clean_expired(self):
        now = monotonic()
        if now < self._next_clean:
            return
        self._next_clean = now + CLEAN_EVERY_S
        super()._clean_expired()

    async def group_send(self, group, message):
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                await self.send(channel, message)
            except ChannelFull:
                pass
