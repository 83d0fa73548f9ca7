"""The worker dead across a ballot's deadline: no vote is taken after the deadline, and
the seal is made as soon as a later action runs, or the worker comes back."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tests.chaos.clients import Client
from tests.chaos.procs import Backend, Daphne, Worker

DURATION_S = 3


@pytest.mark.chaos
@pytest.mark.wire
@pytest.mark.postgres
def test_no_vote_after_the_deadline_and_the_seal_waits_for_no_worker(tmp_path, request):
    if not os.environ.get("REDIS_URL"):
        pytest.skip("without Redis the daphne process runs the deadlines itself (no worker to kill)")
    backend = Backend(tmp_path)
    backend.migrate()
    demo = backend.demo(consumers=4)
    users = {u["role"]: u for u in demo["users"] if u["role"] != "consumer"}
    voters = [u for u in demo["users"] if u["role"] == "consumer"]
    room = demo["room_id"]
    server = Daphne(backend)  # and no worker: it is dead across both deadlines
    worker = None
    figures = {}

    def seals(ballot_id) -> int:
        return backend.sql(
            "SELECT count(*) FROM rooms_event WHERE type = 'ballot.sealed' AND data->>'ballot_id' = ?"
            if backend.postgres else
            "SELECT count(*) FROM rooms_event WHERE type = 'ballot.sealed' AND json_extract(data, '$.ballot_id') = ?",
            (ballot_id,),
        )[0][0]

    try:
        async def open_ballot(med, comp, title):
            ack = await comp.request({"type": "offer.submit", "title": title, "terms": "Sous 30 jours.", "amount_cents": 5000})
            await med.sync()
            offer_id = med.events[ack["seq"]]["offer"]["id"]
            ack = await med.request({"type": "ballot.open", "offer_id": offer_id, "duration_s": DURATION_S})
            assert ack["type"] == "ack", ack
            await med.sync()
            return med.events[ack["seq"]]["ballot"]["id"]

        async def scenario():
            med = Client(server, room, users["mediator"]["session"], "med")
            comp = Client(server, room, users["company"]["session"], "comp")
            a = Client(server, room, voters[0]["session"], "a")
            b = Client(server, room, voters[1]["session"], "b")
            for c in (med, comp, a, b):
                await c.connect()
            # 1. A later action seals: a vote after the deadline is refused and seals.
            first = await open_ballot(med, comp, "Offre 1")
            answer = await a.request({"type": "vote.cast", "ballot_id": first, "choice": "accept"})
            assert answer["type"] == "vote.receipt", answer
            await asyncio.sleep(DURATION_S + 1.5)
            assert seals(first) == 0  # nobody sealed it yet: no worker
            late = await b.request({"type": "vote.cast", "ballot_id": first, "choice": "accept"})
            assert (late["type"], late.get("code")) == ("error", "ballot_closed"), late
            await med.sync()
            sealed = [e for e in med.events.values() if e["type"] == "ballot.sealed" and e["ballot_id"] == first]
            assert len(sealed) == 1 and (sealed[0]["accept"], sealed[0]["refuse"]) == (1, 0), sealed
            figures["late_votes_taken"] = 0
            # 2. Nobody acts: the worker, back after the deadline, seals.
            second = await open_ballot(med, comp, "Offre 2")
            await asyncio.sleep(DURATION_S + 1.5)
            assert seals(second) == 0
            return med, second

        med, second = asyncio.run(scenario())
        worker = Worker(backend)
        started = time.monotonic()
        while seals(second) == 0:
            assert time.monotonic() - started < 30, worker.log()[-3000:]
            time.sleep(0.2)
        figures["worker_sealed_after_s"] = round(time.monotonic() - started, 1)
        time.sleep(1)
        assert seals(second) == 1
        first_id = str(int(second) - 1)
        assert seals(first_id) == 1
        votes = backend.sql("SELECT count(*) FROM rooms_event WHERE type = 'ballot.sealed'")[0][0]
        figures["seals"] = votes
        assert worker.tracebacks() == [] and server.tracebacks() == []
        print("\nWORKER:", figures)
        request.node.user_properties.append(("worker", figures))
    finally:
        if worker:
            worker.stop()
        server.stop()
        backend.drop()
