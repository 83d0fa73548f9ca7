"""One load-client process: `websockets` connections driven by the orchestrator (bench/run.py)
over stdin/stdout, one JSON object per line. The same code drives every system measured
(Palabre, baseline A, baseline D): only the frame a sender writes and the field a
receiver reads differ (``--dialect``).

Commands (stdin) and answers (stdout):

- ``connect`` {targets: [{u, c, o, l, s}], concurrency}: opens the sockets (url, session
  cookie or null, origin, local source address or null, sender flag); a Palabre socket
  counts as connected once its ``welcome`` arrived (the hub has joined it by then).
- ``send`` {k}: the sender writes message k, stamped with ``time.monotonic()`` (one clock
  for every process on the host).
- ``fanout`` {}: from now on count arrivals per message; ``{"ev": "all", "k"}`` is printed
  when every local receiver has message k.
- ``chat`` {rate, warm, dur, drain}: every socket of this process sends, in a shuffled
  round robin, ``rate`` messages a second in all, for warm + dur seconds.
- ``seen`` {}: how many tagged frames have arrived since the process started (any mode).
- ``stats`` {}: latencies and counts, then resets them.
- ``exit``: aborts every socket (no closing handshake) and exits.

The clients share the servers' 2 cores, so their CPU is the servers' loss: they run on
uvloop, which took a quarter off the clients' CPU per delivered frame in many small
rooms (BENCHMARKS.md, notes), for every system alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import time
from collections import Counter

import uvloop
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


class Load:
    def __init__(self, dialect: str):
        self.palabre = dialect == "palabre"
        self.key = "body" if self.palabre else "message"
        self.sockets: list = []
        self.last_opened: list = []  # the receivers of the last ``connect``, for ``drop``
        self.dropped: set = set()
        self.receivers = 0
        self.sender = None
        self.mode = "idle"
        self.counts: Counter = Counter()
        self.last: dict[int, float] = {}
        self.latencies: list[float] = []
        self.window = (0.0, 0.0)
        self.closed_by_server: Counter = Counter()
        self.frames_seen = 0
        self.out_lock = asyncio.Lock()

    def emit(self, obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def frame(self, tag: str) -> str:
        if self.palabre:
            return json.dumps({"type": "chat.send", "body": tag})
        return json.dumps({"message": tag})

    # --- connecting ------------------------------------------------------------------

    async def open_one(self, target: dict, handshakes: list, errors: Counter) -> None:
        headers = [("Cookie", f"sessionid={target['c']}")] if target.get("c") else None
        extra = {"local_addr": (target["l"], 0)} if target.get("l") else {}
        start = time.monotonic()
        try:
            ws = await connect(
                target["u"],
                origin=target["o"],
                additional_headers=headers,
                compression=None,
                ping_interval=None,
                open_timeout=120,
                close_timeout=1,
                proxy=None,
                max_size=2**20,
                **extra,
            )
            if self.palabre:
                first = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if first.get("type") != "welcome":
                    raise RuntimeError(f"first frame {first.get('type')}")
        except InvalidStatus as exc:
            errors[f"http {exc.response.status_code}"] += 1
            return
        except ConnectionClosed as exc:
            errors[f"closed {exc.rcvd.code if exc.rcvd else 'no close frame'}"] += 1
            return
        except Exception as exc:  # noqa: BLE001 - counted and reported, never hidden
            errors[type(exc).__name__ + (f" {exc.errno}" if getattr(exc, "errno", None) else "")] += 1
            return
        handshakes.append(time.monotonic() - start)
        self.sockets.append(ws)
        if target.get("s"):
            self.sender = ws
            asyncio.create_task(self.drain(ws))
        else:
            self.receivers += 1
            self.last_opened.append(ws)
            asyncio.create_task(self.read(ws))

    async def connect_all(self, targets: list[dict], concurrency: int) -> dict:
        handshakes: list[float] = []
        errors: Counter = Counter()
        self.last_opened = []
        queue = list(targets)
        queue.reverse()

        async def worker():
            while queue:
                await self.open_one(queue.pop(), handshakes, errors)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(targets)) or 1)))
        return {"connected": len(handshakes), "errors": dict(errors), "handshakes": handshakes}

    def drop(self) -> dict:
        """Resets the receivers the last ``connect`` opened (an RST, as when a client's
        network goes: no close handshake, no TIME_WAIT to exhaust the ports of a repeat),
        so that the same members can connect again and that step be measured again."""
        dropped, self.last_opened = self.last_opened, []
        for ws in dropped:
            self.dropped.add(ws)
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.transport.abort()
        gone = set(dropped)
        self.sockets = [ws for ws in self.sockets if ws not in gone]
        self.receivers -= len(dropped)
        return {"dropped": len(dropped)}

    # --- receiving -------------------------------------------------------------------

    async def drain(self, ws) -> None:
        try:
            async for _ in ws:
                pass
        except ConnectionClosed as exc:
            self.closed_by_server[str(exc.rcvd.code if exc.rcvd else "none")] += 1

    async def read(self, ws) -> None:
        key = self.key
        try:
            async for text in ws:
                now = time.monotonic()
                frame = json.loads(text)
                if self.mode == "vote":
                    self.vote_frame(frame, now)
                    continue
                tag = frame.get(key)
                if not tag or tag[0] != "b":
                    continue
                _b, k, sent = tag.split("|", 3)[:3]
                self.arrival(int(k), float(sent), now)
        except ConnectionClosed as exc:
            if ws in self.dropped:
                self.dropped.discard(ws)
                return
            self.receivers -= 1
            self.closed_by_server[str(exc.rcvd.code if exc.rcvd else "none")] += 1

    def arrival(self, k: int, sent: float, now: float) -> None:
        self.frames_seen += 1
        if self.mode == "fanout":
            latency = now - sent
            self.latencies.append(latency)
            count = self.counts[k] + 1
            self.counts[k] = count
            if latency > self.last.get(k, 0.0):
                self.last[k] = latency
            if count == self.receivers:
                self.emit({"ev": "all", "k": k})
        elif self.mode == "chat":
            lo, hi = self.window
            if lo <= sent < hi:
                self.latencies.append(now - sent)
                self.counts[0] += 1

    # --- sending ---------------------------------------------------------------------

    async def send(self, k: int, pad: str) -> None:
        await self.sender.send(self.frame(f"b|{k}|{time.monotonic()!r}|{pad}"))

    async def chat(self, rate: float, warm: float, dur: float, proc: int) -> dict:
        """Sends at ``rate`` messages a second from this process, spread evenly over its
        sockets in a shuffled order, for warm + dur seconds."""
        order = list(self.sockets)
        random.shuffle(order)
        start = time.monotonic() + 0.05
        self.window = (start + warm, start + warm + dur)
        self.mode = "chat"
        end = start + warm + dur
        sent_in_window = 0
        i = 0
        late = 0
        while True:
            due = start + i / rate
            if due >= end:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                late += 1
            now = time.monotonic()
            ws = order[i % len(order)]
            try:
                await ws.send(self.frame(f"b|{proc * 10**9 + i}|{now!r}|"))
            except ConnectionClosed:
                pass
            else:
                if self.window[0] <= now < self.window[1]:
                    sent_in_window += 1
            i += 1
        return {"sent_in_window": sent_in_window, "sent": i, "late": late}

    # --- voting (Palabre) ----------------------------------------------------------------

    def vote_frame(self, frame: dict, now: float) -> None:
        kind = frame.get("type")
        if kind == "vote.receipt":
            self.counts["receipt"] += 1
            self.last_answer = now
        elif kind == "error":
            self.counts["error " + str(frame.get("code"))] += 1
            self.last_answer = now
        elif kind == "ballot.sealed":
            self.sealed[json.dumps({k: frame.get(k) for k in ("seq", "outcome", "accept", "refuse", "eligible")})] += 1
            return
        else:
            return
        if self.counts["receipt"] + sum(v for k, v in self.counts.items() if k.startswith("error")) >= self.voters:
            self.votes_done.set()

    async def vote(self, ballot_id: str, accept: int, timeout: float) -> dict:
        """Every receiver of this process casts one vote: ``accept`` of them accept; the
        refusals go first. Answers when each has its receipt or error (or at timeout)."""
        self.mode = "vote"
        self.sealed = Counter()
        self.votes_done = asyncio.Event()
        voters = [ws for ws in self.sockets if ws is not self.sender]
        self.voters = len(voters)
        refuse = len(voters) - accept
        start = time.monotonic()
        self.last_answer = start
        for i, ws in enumerate(voters):
            choice = "refuse" if i < refuse else "accept"
            await ws.send(json.dumps({"type": "vote.cast", "ballot_id": ballot_id, "choice": choice, "ref": str(i)}))
        sent = time.monotonic()
        try:
            await asyncio.wait_for(self.votes_done.wait(), timeout)
        except TimeoutError:
            pass
        await asyncio.sleep(2.0)  # the seal's broadcast, when the last vote sealed it
        return {"start": start, "sent": sent, "last_answer": self.last_answer,
                "counts": dict(self.counts), "sealed": dict(self.sealed), "voters": self.voters}

    def stats(self) -> dict:
        out = {
            "latencies": self.latencies,
            "counts": {str(k): v for k, v in self.counts.items()},
            "last": {str(k): v for k, v in self.last.items()},
            "receivers": self.receivers,
            "closed_by_server": dict(self.closed_by_server),
        }
        self.latencies, self.counts, self.last = [], Counter(), {}
        return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["palabre", "chat"], required=True)
    parser.add_argument("--proc", type=int, default=0)
    args = parser.parse_args()
    load = Load(args.dialect)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**28)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        name = cmd["cmd"]
        if name == "connect":
            answer = await load.connect_all(cmd["targets"], cmd.get("concurrency", 25))
        elif name == "drop":
            answer = load.drop()
        elif name == "send":
            await load.send(cmd["k"], cmd.get("pad", ""))
            continue
        elif name == "fanout":
            load.mode = "fanout"
            answer = {}
        elif name == "chat":
            answer = await load.chat(cmd["rate"], cmd["warm"], cmd["dur"], args.proc)
        elif name == "vote":
            answer = await load.vote(cmd["ballot_id"], cmd["accept"], cmd.get("timeout", 300))
        elif name == "seen":
            answer = {"seen": load.frames_seen}
        elif name == "stats":
            answer = load.stats()
        elif name == "exit":
            for ws in load.sockets:
                ws.transport.abort()
            load.emit({"ok": True})
            os._exit(0)
        else:
            answer = {"error": f"unknown command {name}"}
        load.emit({"re": name, **answer})


if __name__ == "__main__":
    uvloop.run(main())
