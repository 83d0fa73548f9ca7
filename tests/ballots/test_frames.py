"""The ballot frames over the room socket: each one's exact broadcast and exact
recipients (Zulip's test_events.py), direct answers to the sender alone, turnout
coalesced, and the role × action matrix with exact error codes."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from ballots import services
from ballots.models import Ballot, Offer
from rooms import deadlines
from rooms.errors import ActionError
from rooms.models import Role
from rooms.services import room_create
from tests.ballots.conftest import TERMS, TITLE, cast, open_ballot, submit_offer
from tests.conftest import connect, refused

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_turnout(settings):
    settings.PALABRE_PROGRESS_INTERVAL_S = 0.2


def until_closed(frames: list[dict]) -> list[dict]:
    """The frames up to ``room.closed``; after it only the record of agreement may come, and
    the last voter's own receipt (the seal is part of its vote)."""
    types = [f["type"] for f in frames]
    if "room.closed" not in types:
        return frames
    end = types.index("room.closed") + 1
    assert set(types[end:]) <= {"agreement.record", "vote.receipt"}, types
    return frames[:end] + [f for f in frames[end:] if f["type"] == "vote.receipt"]


async def frames_until_quiet(socket, quiet: float = 0.5) -> list[dict]:
    """Every frame until none comes for ``quiet`` seconds (a receive that times out
    would cancel the application under test: wait with receive_nothing instead)."""
    got = []
    while not await socket.nothing(quiet):
        got.append(await socket.recv())
    return got


async def close_all(*sockets):
    for socket in sockets:
        await socket.close()


@sync_to_async
def make_caucus(mediation, member):
    return room_create(mediation=mediation, kind="caucus", title="Caucus", caucus_member=member)


async def test_offer_submit_reaches_the_plenary_and_acks_the_company(mediation, plenary, mediator, company, consumer):
    caucus = await make_caucus(mediation, consumer)
    co, med, alice = [await connect(plenary, m) for m in (company, mediator, consumer)]
    aside = await connect(caucus, consumer)
    await co.send({"type": "offer.submit", "title": TITLE, "terms": TERMS, "amount_cents": 4200, "ref": "o1"})
    mine = await frames_until_quiet(co)
    offer = await Offer.objects.aget()
    expected = {
        "type": "offer.submitted",
        "seq": offer.seq,
        "offer": {"id": str(offer.pk), "title": TITLE, "terms": TERMS, "amount_cents": 4200},
    }
    assert sorted(f["type"] for f in mine) == ["ack", "offer.submitted"]
    assert next(f for f in mine if f["type"] == "ack") == {"type": "ack", "ref": "o1", "seq": offer.seq}
    for socket in (co, med, alice):
        got = mine if socket is co else await frames_until_quiet(socket)
        sent = [f for f in got if f["type"] == "offer.submitted"]
        assert len(sent) == 1 and {k: v for k, v in sent[0].items() if k != "at"} == expected
    assert await aside.nothing(0.3)
    await close_all(co, med, alice, aside)


async def test_ballot_open_and_vote_cast_broadcasts_and_direct_answers(mediation, plenary, mediator, company, consumers):
    alice, bob, carol, dave, erin = await sync_to_async(consumers)(5)
    offer = await sync_to_async(submit_offer)(company, plenary)
    caucus = await make_caucus(mediation, alice)
    med, co, a, b = [await connect(plenary, m) for m in (mediator, company, alice, bob)]
    aside = await connect(caucus, alice)

    await med.send({"type": "ballot.open", "offer_id": str(offer.pk), "duration_s": 600, "ref": "b1"})
    got = await frames_until_quiet(med)
    ballot = await Ballot.objects.aget()
    assert sorted(f["type"] for f in got) == ["ack", "ballot.opened"]
    assert next(f for f in got if f["type"] == "ack") == {"type": "ack", "ref": "b1", "seq": ballot.opened_seq}
    opened = {
        "type": "ballot.opened",
        "seq": ballot.opened_seq,
        "ballot": {
            "id": str(ballot.pk),
            "offer_id": str(offer.pk),
            "closes_at": ballot.closes_at.isoformat(),
            "eligible": 5,
            "threshold": "0.75",
        },
    }
    for socket in (co, a, b):
        (frame,) = await frames_until_quiet(socket)
        assert {k: v for k, v in frame.items() if k != "at"} == opened
    assert await aside.nothing(0.3)

    await a.send({"type": "vote.cast", "ballot_id": str(ballot.pk), "choice": "accept", "ref": "v1"})
    receipt = await a.recv()
    assert receipt["type"] == "vote.receipt"
    assert receipt == {"type": "vote.receipt", "ref": "v1", "ballot_id": str(ballot.pk), "receipt": receipt["receipt"]}
    progress = {"type": "ballot.progress", "ballot_id": str(ballot.pk), "voted": 1, "eligible": 5}
    for socket in (med, co, a, b):
        assert await frames_until_quiet(socket) == [progress]  # turnout only, no receipt
    assert await aside.nothing(0.3)
    await close_all(med, co, a, b, aside)


async def test_turnout_is_coalesced_never_one_frame_per_vote(mediation, plenary, mediator, company, crowd):
    voters = await sync_to_async(crowd)(40)  # 30 accepts needed: 16 votes leave it open
    offer = await sync_to_async(submit_offer)(company, plenary)
    ballot = await sync_to_async(open_ballot)(mediator, offer)
    watcher = await connect(plenary, mediator)
    sockets = [await connect(plenary, v) for v in voters[:16]]
    started = time.monotonic()
    for socket in sockets:
        await socket.send({"type": "vote.cast", "ballot_id": str(ballot.pk), "choice": "accept"})
    for socket in sockets:
        assert (await socket.recv_until("vote.receipt"))["ballot_id"] == str(ballot.pk)
    seen = await frames_until_quiet(watcher, quiet=0.8)
    elapsed = time.monotonic() - started
    assert {f["type"] for f in seen} == {"ballot.progress"}
    # One frame per 0.2 s interval at most, and the last one says all 16.
    assert 1 <= len(seen) <= elapsed / 0.2 + 1 < 16
    assert seen[-1] == {"type": "ballot.progress", "ballot_id": str(ballot.pk), "voted": 16, "eligible": 40}
    assert [f["voted"] for f in seen] == sorted(f["voted"] for f in seen)
    await close_all(watcher, *sockets)


async def test_the_vote_that_makes_it_certain_seals_and_ends_the_mediation(mediation, plenary, mediator, company, consumers):
    voters = await sync_to_async(consumers)(4)  # 3 accepts of 4
    offer = await sync_to_async(submit_offer)(company, plenary)
    ballot = await sync_to_async(open_ballot)(mediator, offer)
    caucus = await make_caucus(mediation, company)
    med = await connect(plenary, mediator)
    aside = await connect(caucus, company)
    sockets = [await connect(plenary, v) for v in voters[:3]]
    seen = {}
    for socket in sockets:
        await socket.send({"type": "vote.cast", "ballot_id": str(ballot.pk), "choice": "accept"})
        seen[socket] = await frames_until_quiet(socket, 0.3)
    # The PDF record of agreement is made by the worker's pass, after the room closed: its
    # frame may follow, never precede, the closing.
    got = until_closed(await frames_until_quiet(med))
    sealed = await Ballot.objects.aget(pk=ballot.pk)
    types = [f["type"] for f in got]
    assert types[-5:] == ["ballot.progress", "ballot.sealed", "agreement.recorded", "mediation.phase", "room.closed"]
    assert set(types[:-5]) <= {"ballot.progress"}
    assert got[-5] == {"type": "ballot.progress", "ballot_id": str(ballot.pk), "voted": 3, "eligible": 4}
    assert {k: v for k, v in got[-4].items() if k != "at"} == {
        "type": "ballot.sealed",
        "seq": sealed.sealed_seq,
        "ballot_id": str(ballot.pk),
        "outcome": "accepted",
        "accept": 3,
        "refuse": 0,
        "eligible": 4,
        "threshold": "0.75",
        "merkle_root": sealed.merkle_root,
        "signature": sealed.signature,
        "key_id": sealed.key_id,
    }
    assert {k: v for k, v in got[-3].items() if k != "at"} == {
        "type": "agreement.recorded",
        "seq": sealed.sealed_seq + 1,
        "offer_id": str(offer.pk),
        "ballot_id": str(ballot.pk),
        "merkle_root": sealed.merkle_root,
        "signature": sealed.signature,
        "key_id": sealed.key_id,
    }
    assert {k: v for k, v in got[-2].items() if k != "at"} == {
        "type": "mediation.phase",
        "seq": sealed.sealed_seq + 2,
        "phase": "closed",
    }
    assert got[-1]["reason"] == "agreement"
    # Every plenary socket got the same (the last voter may get them before its receipt:
    # the seal is part of its vote), the caucus only its own room's closing.
    for socket in sockets:
        theirs = [f["type"] for f in until_closed(seen[socket] + await frames_until_quiet(socket)) if f["type"] != "vote.receipt"]
        assert theirs[-5:] == types[-5:]
        assert [f["type"] for f in seen[socket]].count("vote.receipt") == 1
    assert [f["type"] for f in await frames_until_quiet(aside)] == ["room.closed"]
    await close_all(med, aside, *sockets)


async def test_the_mediator_closes_a_ballot(plenary, mediator, company, consumers):
    voters = await sync_to_async(consumers)(4)
    offer = await sync_to_async(submit_offer)(company, plenary)
    ballot = await sync_to_async(open_ballot)(mediator, offer)
    await sync_to_async(cast)(voters[0], ballot, "accept")
    med, co = await connect(plenary, mediator), await connect(plenary, company)
    await med.send({"type": "ballot.close", "ballot_id": str(ballot.pk), "ref": "c1"})
    mine = await frames_until_quiet(med)
    sealed = await Ballot.objects.aget(pk=ballot.pk)
    assert {"type": "ack", "ref": "c1", "seq": sealed.sealed_seq} in mine
    theirs = await frames_until_quiet(co)
    assert [f["type"] for f in theirs] == ["ballot.progress", "ballot.sealed"]
    assert theirs[0]["voted"] == 1
    assert (theirs[1]["outcome"], theirs[1]["accept"], theirs[1]["refuse"]) == ("rejected", 1, 0)
    assert [f["type"] for f in mine if f["type"] != "ack"] == ["ballot.progress", "ballot.sealed"]
    await med.send({"type": "ballot.close", "ballot_id": str(ballot.pk), "ref": "c2"})
    error = await med.recv()
    assert (error["type"], error["ref"], error["code"]) == ("error", "c2", "ballot_closed")
    await close_all(med, co)


async def test_the_worker_seals_at_the_deadline_and_the_room_learns_it(plenary, mediator, company, consumers):
    voters = await sync_to_async(consumers)(3)
    offer = await sync_to_async(submit_offer)(company, plenary)
    ballot = await sync_to_async(open_ballot)(mediator, offer, seconds=1)
    alice = await connect(plenary, voters[0])
    await alice.send({"type": "vote.cast", "ballot_id": str(ballot.pk), "choice": "accept"})
    await alice.recv_until("vote.receipt")
    await asyncio.sleep(1.1)
    await sync_to_async(deadlines.run_once)()  # the worker (or the embedded in-process pass)
    sealed = await alice.recv_until("ballot.sealed")
    assert (sealed["outcome"], sealed["accept"]) == ("rejected", 1)
    assert (await Ballot.objects.aget(pk=ballot.pk)).seal_reason == "deadline"
    await alice.send({"type": "vote.cast", "ballot_id": str(ballot.pk), "choice": "accept", "ref": "late"})
    error = await alice.recv_until("error")
    assert (error["ref"], error["code"]) == ("late", "ballot_closed")
    await alice.close()


async def test_vote_refusals_over_the_socket(mediation, plenary, mediator, company, consumers, make_member):
    alice, bob, carol, dave = await sync_to_async(consumers)(4)
    offer = await sync_to_async(submit_offer)(company, plenary)
    ballot = await sync_to_async(open_ballot)(mediator, offer)
    late = await sync_to_async(make_member)(mediation, Role.CONSUMER)
    a, newcomer = await connect(plenary, alice), await connect(plenary, late)

    async def answer(socket, frame) -> dict:
        await socket.send({**frame, "ref": "r"})
        reply = await socket.recv_until("vote.receipt") if frame.get("expect") else await socket.recv_until("error")
        return reply

    vote = {"type": "vote.cast", "ballot_id": str(ballot.pk), "choice": "refuse"}
    await a.send({**vote, "ref": "first"})
    assert (await a.recv_until("vote.receipt"))["ref"] == "first"
    assert (await answer(a, vote))["code"] == "already_voted"
    assert (await answer(newcomer, vote))["code"] == "not_eligible"
    assert (await answer(a, {**vote, "choice": "maybe"}))["code"] == "bad_request"
    assert (await answer(a, {**vote, "ballot_id": "x1"}))["code"] == "bad_request"
    assert (await answer(a, {"type": "vote.cast", "choice": "accept"}))["code"] == "bad_request"
    assert (await answer(a, {**vote, "ballot_id": "424242"}))["code"] == "not_found"
    await close_all(a, newcomer)


async def test_ballot_open_refusals_over_the_socket(mediation, plenary, mediator, company, consumers):
    await sync_to_async(consumers)(2)
    offer = await sync_to_async(submit_offer)(company, plenary)
    med = await connect(plenary, mediator)

    async def code(frame) -> str:
        await med.send({**frame, "ref": "r"})
        return (await med.recv_until("error"))["code"]

    base = {"type": "ballot.open", "offer_id": str(offer.pk)}
    assert await code(base) == "bad_request"  # neither closes_at nor duration_s
    assert await code({**base, "duration_s": 60, "closes_at": "2099-01-01T00:00:00+00:00"}) == "bad_request"
    assert await code({**base, "duration_s": 0}) == "bad_request"
    assert await code({**base, "closes_at": "2099-01-01T00:00:00"}) == "bad_request"  # no offset
    assert await code({**base, "closes_at": "2000-01-01T00:00:00+00:00"}) == "bad_request"  # past
    assert await code({**base, "duration_s": 30 * 86400}) == "bad_request"  # after the mediation
    assert await code({**base, "offer_id": "999999", "duration_s": 60}) == "not_found"
    await med.send({**base, "closes_at": mediation.closes_at.isoformat(), "ref": "ok"})
    assert (await med.recv_until("ack"))["ref"] == "ok"
    assert await code({**base, "duration_s": 60}) == "bad_request"  # one ballot per offer
    await med.close()


async def test_offer_submit_refusals_over_the_socket(plenary, company):
    co = await connect(plenary, company)

    async def code(frame) -> str:
        await co.send({"type": "offer.submit", **frame, "ref": "r"})
        return (await co.recv_until("error"))["code"]

    assert await code({"title": TITLE}) == "bad_request"
    assert await code({"title": "  ", "terms": TERMS}) == "bad_request"
    assert await code({"title": "x" * 201, "terms": TERMS}) == "too_large"
    assert await code({"title": TITLE, "terms": TERMS, "amount_cents": -1}) == "bad_request"
    assert await code({"title": TITLE, "terms": TERMS, "amount_cents": "12"}) == "bad_request"
    assert not await Offer.objects.aexists()
    await co.close()


# --- the role × action matrix ------------------------------------------------------------------

ACTIONS = ["offer.submit", "ballot.open", "ballot.close", "vote.cast"]
ALLOWED = {"offer.submit": Role.COMPANY, "ballot.open": Role.MEDIATOR, "ballot.close": Role.MEDIATOR, "vote.cast": Role.CONSUMER}


def frame_for(action: str, offer, ballot) -> dict:
    return {
        "offer.submit": {"type": "offer.submit", "title": TITLE, "terms": TERMS},
        "ballot.open": {"type": "ballot.open", "offer_id": str(offer.pk), "duration_s": 600},
        "ballot.close": {"type": "ballot.close", "ballot_id": str(ballot.pk)},
        "vote.cast": {"type": "vote.cast", "ballot_id": str(ballot.pk), "choice": "accept"},
    }[action]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", [Role.CONSUMER, Role.MEDIATOR, Role.COMPANY])
async def test_role_action_matrix_over_the_socket(role, action, mediation, plenary, mediator, company, consumers):
    electors = await sync_to_async(consumers)(4)
    voted_on = await sync_to_async(submit_offer)(company, plenary)
    ballot = await sync_to_async(open_ballot)(mediator, voted_on)
    if action == "ballot.open":
        # A sealed ballot makes room for the opening on a new offer.
        await sync_to_async(services.ballot_close)(ballot=ballot)
    fresh_offer = await sync_to_async(submit_offer)(company, plenary, title="Nouvelle offre")
    member = {Role.CONSUMER: electors[0], Role.MEDIATOR: mediator, Role.COMPANY: company}[role]
    socket = await connect(plenary, member)
    await socket.send({**frame_for(action, fresh_offer, ballot), "ref": "m"})
    got = await frames_until_quiet(socket)
    answers = [f for f in got if f.get("ref") == "m"]
    assert len(answers) == 1
    if ALLOWED[action] == role:
        assert answers[0]["type"] == ("vote.receipt" if action == "vote.cast" else "ack")
    else:
        assert (answers[0]["type"], answers[0]["code"]) == ("error", "forbidden")
    await socket.close()


async def test_pending_members_and_outsiders_never_reach_the_actions(plenary, pending, outsider):
    assert await refused(plenary, pending) == 4403
    assert await refused(plenary, outsider) == 4403


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("who", ["pending", "non_member"])
async def test_pending_members_and_outsiders_are_forbidden_by_the_services(
    who, action, mediation, plenary, mediator, company, consumers, pending, make_mediation, make_member
):
    # The socket refuses them at the handshake; a connection whose membership changed
    # after it (or any other caller) still meets the services' own check.
    await sync_to_async(consumers)(2)
    offer = await sync_to_async(submit_offer)(company, plenary)
    ballot = await sync_to_async(open_ballot)(mediator, offer)
    if who == "pending":
        member = pending
    else:
        other = await sync_to_async(make_mediation)()
        member = await sync_to_async(make_member)(other, Role.COMPANY if action == "offer.submit" else Role.MEDIATOR if "ballot" in action else Role.CONSUMER)
    calls = {
        "offer.submit": lambda: services.check_offer_submit(member_id=member.pk, room_id=plenary.pk),
        "ballot.open": lambda: services.check_ballot_open(member_id=member.pk, room_id=plenary.pk, offer_id=offer.pk),
        "ballot.close": lambda: services.check_ballot_close(member_id=member.pk, room_id=plenary.pk, ballot_id=ballot.pk),
        "vote.cast": lambda: services.check_vote(member_id=member.pk, room_id=plenary.pk, ballot_id=ballot.pk),
    }
    with pytest.raises(ActionError) as refusal:
        await sync_to_async(calls[action])()
    assert refusal.value.code == "forbidden"
