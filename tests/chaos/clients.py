"""A protocol client for the campaigns: keeps the room's events by seq, notices gaps,
and fills them with ``sync`` the way a browser does."""

from __future__ import annotations

import asyncio
import itertools
import json

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

_refs = itertools.count(1)
DIRECT = {"ack", "error", "pong", "synced", "vote.receipt", "caucus.opened"}


class Client:
    def __init__(self, server, room_id, session: str, name: str = ""):
        self.server, self.room_id, self.session, self.name = server, str(room_id), session, name
        self.events: dict[int, dict] = {}
        self.answers: dict[str, asyncio.Future] = {}
        self.unanswered_errors: list[dict] = []
        self.other: list[dict] = []
        self.ws = None
        self.reader = None
        self.closed_code = None
        self.gap_noticed = 0
        self.handshake_retries = 0
        self.before_welcome: list[dict] = []

    async def connect(self, server=None) -> dict:
        self.server = server or self.server
        for attempt in range(6):
            try:
                self.ws = await connect(
                    f"{self.server.ws_base}/ws/rooms/{self.room_id}/", origin=self.server.base,
                    additional_headers={"Cookie": f"sessionid={self.session}"}, open_timeout=30,
                    max_queue=None, ping_interval=None,
                )
                break
            except (OSError, InvalidMessage):  # a handshake dropped under a ramp: retried
                self.handshake_retries += 1
                if attempt == 5:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
        welcome = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
        while welcome["type"] != "welcome":
            # A protocol violation (welcome first), counted for the tests to assert on:
            # tests/chaos/test_kill_daphne.py found ballot.progress frames here.
            self.before_welcome.append(welcome)
            welcome = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
        self.welcome = welcome
        self.closed_code = None
        self.reader = asyncio.create_task(self._read())
        return welcome

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                ref = frame.get("ref")
                if frame["type"] in DIRECT and ref in self.answers and not self.answers[ref].done():
                    self.answers[ref].set_result(frame)
                elif "seq" in frame and frame["type"] != "ack":
                    if frame["seq"] > self.last_contiguous() + 1 and frame["seq"] not in self.events:
                        self.gap_noticed += 1
                    self.events[frame["seq"]] = frame
                elif frame["type"] == "error":
                    self.unanswered_errors.append(frame)
                else:
                    self.other.append(frame)
        except Exception:  # noqa: BLE001 - the socket went away: recorded
            pass
        finally:
            self.closed_code = getattr(self.ws, "close_code", None) or -1
            for fut in self.answers.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"socket closed ({self.closed_code})"))

    async def request(self, frame: dict, timeout: float = 20) -> dict:
        ref = f"{self.name}-{next(_refs)}"
        fut = asyncio.get_running_loop().create_future()
        self.answers[ref] = fut
        await self.ws.send(json.dumps({**frame, "ref": ref}))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.answers.pop(ref, None)

    def last_contiguous(self) -> int:
        seq = 0
        while seq + 1 in self.events:
            seq += 1
        return seq

    def gaps(self) -> list[int]:
        top = max(self.events, default=0)
        return [s for s in range(1, top + 1) if s not in self.events]

    async def sync(self) -> dict:
        """Fills every gap: asks for all events after the last contiguous seq."""
        answer = await self.request({"type": "sync", "after_seq": self.last_contiguous()}, timeout=60)
        assert answer["type"] == "synced", answer
        return answer

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
