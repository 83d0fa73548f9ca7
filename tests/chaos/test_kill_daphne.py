"""kill -9 of one of two daphne processes while 200 consumers spread over both are voting:
the clients of the dead one reconnect to the survivor and sync; a vote whose answer was
lost is cast again (``already_voted`` says it was counted); every receipt handed out is
on the seal's bulletin board with its choice, no vote is counted twice, and there is
exactly one seal, which ``verify_seal`` accepts; and every socket's first frame is its
``welcome`` (97 were not, before the consumer held early broadcasts)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random

import pytest

from tests.chaos.clients import Client
from tests.chaos.procs import Backend, Daphne, http, session_headers

CONSUMERS = 200


def leaf(receipt: str, ballot_id: str, choice: str) -> str:
    return hashlib.sha256(b"\x00" + f"{receipt}\n{ballot_id}\n{choice}".encode()).hexdigest()


@pytest.mark.chaos
@pytest.mark.wire
@pytest.mark.postgres
def test_kill_9_of_one_daphne_while_200_consumers_vote(tmp_path, request):
    if not os.environ.get("REDIS_URL"):
        pytest.skip("two daphne processes need the Redis layer (pass 2 of make test)")
    backend = Backend(tmp_path)
    backend.migrate()
    demo = backend.demo(consumers=CONSUMERS)
    users = {u["role"]: u for u in demo["users"] if u["role"] != "consumer"}
    voters = [u for u in demo["users"] if u["role"] == "consumer"]
    room = demo["room_id"]
    a_srv, b_srv = Daphne(backend, name="daphne-a"), Daphne(backend, name="daphne-b")
    figures = {}
    try:
        async def scenario():
            med = Client(a_srv, room, users["mediator"]["session"], "med")
            comp = Client(a_srv, room, users["company"]["session"], "comp")
            await med.connect()
            await comp.connect()
            clients = [Client(a_srv if i % 2 else b_srv, room, u["session"], f"v{i}") for i, u in enumerate(voters)]
            for i in range(0, len(clients), 25):
                await asyncio.gather(*(c.connect() for c in clients[i : i + 25]))
            ack = await comp.request({"type": "offer.submit", "title": "Remboursement", "terms": "Sous 30 jours.", "amount_cents": 9900})
            await med.sync()
            offer_id = med.events[ack["seq"]]["offer"]["id"]
            ack = await med.request({"type": "ballot.open", "offer_id": offer_id, "duration_s": 3600})
            await med.sync()
            ballot_id = med.events[ack["seq"]]["ballot"]["id"]

            # 149 accept, 50 refuse, 1 abstains: the threshold (150 of 200) is not reached
            # and rejection is not certain before the mediator closes: one seal, at the end.
            choices = ["accept"] * 149 + ["refuse"] * 50 + [None]
            random.Random(4).shuffle(choices)
            receipts: dict[int, str] = {}
            outcomes = {"receipt": 0, "already_voted": 0, "retried": 0, "reconnected": 0}
            killed = asyncio.Event()

            async def vote(i: int, c: Client, choice: str | None):
                if choice is None:
                    return
                await asyncio.sleep(random.Random(i).uniform(0, 3))
                for _attempt in range(10):
                    try:
                        answer = await c.request({"type": "vote.cast", "ballot_id": ballot_id, "choice": choice}, timeout=20)
                    except Exception:  # noqa: BLE001 - the process died under it
                        await killed.wait()
                        await c.close()
                        await c.connect(a_srv)  # the survivor
                        await c.sync()
                        outcomes["reconnected"] += 1
                        outcomes["retried"] += 1
                        continue
                    if answer["type"] == "vote.receipt":
                        receipts[i] = answer["receipt"]
                        outcomes["receipt"] += 1
                    else:
                        assert answer.get("code") == "already_voted", answer
                        outcomes["already_voted"] += 1
                    return
                raise AssertionError(f"voter {i} never got an answer")

            async def killer():
                await asyncio.sleep(1.5)
                b_srv.kill9()
                killed.set()

            await asyncio.gather(killer(), *(vote(i, c, ch) for i, (c, ch) in enumerate(zip(clients, choices, strict=True))))
            # Sockets of B that were idle (abstainer) also move over.
            for c in clients:
                if c.closed_code is not None:
                    await c.close()
                    await c.connect(a_srv)
            ack = await med.request({"type": "ballot.close", "ballot_id": ballot_id})
            assert ack["type"] == "ack", ack
            await asyncio.sleep(0.5)
            for c in [med, *clients]:
                await c.sync()
            return ballot_id, receipts, choices, outcomes, clients, med

        ballot_id, receipts, choices, outcomes, clients, med = asyncio.run(scenario())
        status, _, board = http("GET", f"{a_srv.base}/api/v1/ballots/{ballot_id}/board", headers=session_headers(users["mediator"]["session"]))
        assert status == 200, board
        on_board = {entry["leaf"]: entry["choice"] for entry in board["leaves"]}
        assert len(on_board) == len(board["leaves"]), "a leaf twice"
        missing = [i for i, r in receipts.items() if on_board.get(leaf(r, ballot_id, choices[i])) != choices[i]]
        assert missing == [], f"receipts handed out but not in the seal: {missing}"
        assert len(board["leaves"]) == 199, len(board["leaves"])  # every voter counted once
        sealed = [e for e in med.events.values() if e["type"] == "ballot.sealed" and e["ballot_id"] == ballot_id]
        assert len(sealed) == 1, sealed
        seals_in_log = backend.sql("SELECT count(*) FROM rooms_event WHERE type = 'ballot.sealed'")[0][0]
        assert seals_in_log == 1
        assert (sealed[0]["accept"], sealed[0]["refuse"], sealed[0]["outcome"]) == (149, 50, "rejected")
        out = backend.manage("verify_seal", ballot_id)
        assert "OK" in out
        top = max(med.events)
        for c in clients:
            assert sorted(c.events)[-1] == top and c.gaps() == [], c.name
        assert a_srv.alive() and a_srv.tracebacks() == []
        assert sum(len(c.before_welcome) for c in clients) == 0, "a frame came before a welcome"
        figures.update(
            voters=199, receipts_handed_out=len(receipts), receipts_missing_from_seal=0, votes_on_board=len(board["leaves"]),
            counted_twice=0, seals=1, **outcomes,
            frames_before_welcome=sum(len(c.before_welcome) for c in clients),
        )
        print("\nKILL9:", figures)
        request.node.user_properties.append(("kill9", figures))
    finally:
        a_srv.stop()
        b_srv.stop()
        backend.drop()
