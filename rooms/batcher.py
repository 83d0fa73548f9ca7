"""Group commit for the busiest action, chat (DESIGN.md, "Real time and scale").

A daphne does all its database work on one thread. Message by message, each chat frame
cost a thread hop, two reads and a transaction of its own, and at a few hundred messages
a second the thread was the bottleneck (BENCHMARKS.md, many small rooms). Here frames
of a batched type wait while the thread is busy with the previous batch and then go
together: one hop, one transaction (``rooms.services.messages_post``). An idle process
sends a lone frame at once, so nothing waits that did not have to; a busy one writes
more per commit instead of queueing longer. Each frame still gets its own answer.

Socket handshakes go the same way (``rooms.consumers``): their reads of session,
membership with its user, and room, with the welcome from that read where the process
already listens to the room (else the welcome's read of the room after the hub's join,
batched too). A reconnect storm's handshakes then share a hop and three queries instead
of paying two hops and five queries each (BENCHMARKS.md, connections).
"""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async

from rooms.actions import BATCHED_ACTIONS, BatchItem

MAX_BATCH = 200


class Batcher:
    def __init__(self, handler, loop: asyncio.AbstractEventLoop | None = None):
        self.handler = handler
        self.loop = loop
        self.pending: list[tuple[BatchItem, asyncio.Future]] = []
        self.draining = False

    async def submit(self, item: BatchItem):
        """The item's replies; raises its ActionError, or the batch's database error."""
        future = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                try:
                    results = await database_sync_to_async(self.handler)([item for item, _ in batch])
                except BaseException as error:  # noqa: BLE001 - each waiter gets the batch's failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    if isinstance(error, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.draining = False


_batchers: dict[str, Batcher] = {}


def batcher(kind: str, handler=None) -> Batcher:
    """The batcher of ``kind`` for the running event loop (one loop per process under
    daphne; tests run one loop after another, and each gets batchers of its own). Its
    handler is ``BATCHED_ACTIONS[kind]`` unless given."""
    loop = asyncio.get_running_loop()
    found = _batchers.get(kind)
    if found is None or found.loop is not loop:
        found = _batchers[kind] = Batcher(handler or BATCHED_ACTIONS[kind], loop)
    return found
