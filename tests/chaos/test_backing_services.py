"""Faults of the backing services, injected into a private Redis (6390) and a private
PostgreSQL cluster (5440), never the shared ones:

* Redis stopped and restarted mid-conversation between two daphne processes: no process
  dies; while it is down the log still takes messages (write first: ``ack`` with its
  seq); once it is back live delivery resumes and ``sync`` fills every gap.
* PostgreSQL restarted: actions during the outage get ``error`` ``unavailable``, nothing
  is half-written (the log stays gapless, no row without its seq), and service resumes
  by itself on the same sockets.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.chaos.clients import Client
from tests.chaos.procs import Backend, Daphne, http
from tests.chaos.services import PG_URL, PrivatePostgres, PrivateRedis


@pytest.fixture(scope="module")
def _stopped_at_the_end():
    """The private services this module started are stopped when it is done: a test run
    leaves no Redis or PostgreSQL of its own behind on the machine."""
    started = {}
    yield started
    for service in started.values():
        service.stop()


@pytest.fixture
def private_redis(_stopped_at_the_end):
    redis = PrivateRedis()
    redis.start()
    _stopped_at_the_end[PrivateRedis] = redis
    yield redis
    redis.start()  # up again for the next test, whatever this one did to it


@pytest.fixture
def private_postgres(_stopped_at_the_end):
    pg = PrivatePostgres()
    pg.start()
    _stopped_at_the_end[PrivatePostgres] = pg
    yield pg
    pg.start()


def log_of(backend: Backend, room_id) -> list[tuple[int, str]]:
    return [tuple(r) for r in backend.sql("SELECT seq, type FROM rooms_event WHERE room_id = ? ORDER BY seq", (int(room_id),))]


async def until(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


@pytest.mark.chaos
@pytest.mark.wire
def test_redis_stopped_and_restarted_mid_conversation(tmp_path, private_redis, request):
    backend = Backend(tmp_path, redis_url=private_redis.url)
    backend.migrate()
    demo = backend.demo(consumers=3)
    alice, bob = [u for u in demo["users"] if u["role"] == "consumer"][:2]
    room = demo["room_id"]
    a_srv, b_srv = Daphne(backend, name="daphne-a"), Daphne(backend, name="daphne-b")
    figures = {}
    try:
        async def scenario():
            a = Client(a_srv, room, alice["session"], "a")
            b = Client(b_srv, room, bob["session"], "b")
            await a.connect()
            await b.connect()
            for i in range(3):
                assert (await a.request({"type": "chat.send", "body": f"avant {i}"}))["type"] == "ack"
            await until(lambda: len(b.events) == 3, 10, "live delivery before the fault")

            private_redis.stop()
            outage_acks = []
            for i in range(5):
                answer = await a.request({"type": "chat.send", "body": f"pendant {i}"}, timeout=30)
                assert answer["type"] == "ack", answer  # written first, whatever the layer
                outage_acks.append(answer["seq"])
            status, _, health = http("GET", a_srv.base + "/healthz")
            assert status == 503 and health["channel_layer"] != "ok"
            assert a_srv.alive() and b_srv.alive()

            private_redis.start()
            restarted = time.monotonic()
            # Live delivery resumes by itself (the hub re-subscribes): keep talking until
            # a message sent after the restart reaches the other process live.
            n = 0
            while True:
                answer = await a.request({"type": "chat.send", "body": f"après {n}"}, timeout=30)
                assert answer["type"] == "ack"
                n += 1
                try:
                    await until(lambda s=answer["seq"]: s in b.events, 1.0, "live")
                    break
                except AssertionError:
                    assert time.monotonic() - restarted < 60, "live delivery never resumed"
            figures["live_again_s"] = round(time.monotonic() - restarted, 1)
            assert b.gaps(), "the outage should have left a gap for b to notice"
            figures["gap_before_sync"] = len(b.gaps())
            await b.sync()
            assert b.gaps() == []
            for _ in range(30):
                status, _, health = http("GET", a_srv.base + "/healthz")
                if status == 200:
                    break
                await asyncio.sleep(1)
            assert status == 200, health
            return a, b, outage_acks

        a, b, outage_acks = asyncio.run(scenario())
        stored = log_of(backend, room)
        assert [s for s, _ in stored] == list(range(1, len(stored) + 1)), "log not gapless"
        assert set(outage_acks) <= {s for s, _ in stored}
        assert sorted(b.events) == [s for s, _ in stored], "b differs from the log after sync"
        assert a_srv.alive() and b_srv.alive()
        figures.update(messages_during_outage=len(outage_acks), processes_died=0)
        print("\nREDIS:", figures)
        request.node.user_properties.append(("redis", figures))
    finally:
        a_srv.stop()
        b_srv.stop()
        backend.drop()


@pytest.mark.chaos
@pytest.mark.wire
def test_postgres_restarted(tmp_path, private_postgres, request):
    backend = Backend(tmp_path, database_url=PG_URL, redis_url="")
    backend.migrate()
    demo = backend.demo(consumers=3)
    alice = next(u for u in demo["users"] if u["role"] == "consumer")
    room = demo["room_id"]
    server = Daphne(backend)
    figures = {}
    try:
        async def scenario():
            a = Client(server, room, alice["session"], "a")
            await a.connect()
            for i in range(3):
                assert (await a.request({"type": "chat.send", "body": f"avant {i}"}))["type"] == "ack"

            private_postgres.stop()
            answers = [await a.request({"type": "chat.send", "body": f"pendant {i}"}, timeout=30) for i in range(5)]
            codes = {(f["type"], f.get("code")) for f in answers}
            assert codes == {("error", "unavailable")}, answers
            status, _, body = http("GET", server.base + "/api/v1/mediations")
            assert status == 503 and body["error"]["code"] == "unavailable"
            assert server.alive()

            private_postgres.start()
            restarted = time.monotonic()
            while True:  # same socket, no reconnect: service resumes by itself
                answer = await a.request({"type": "chat.send", "body": "après"}, timeout=30)
                if answer["type"] == "ack":
                    break
                assert answer.get("code") == "unavailable", answer
                assert time.monotonic() - restarted < 60, "service never resumed"
                await asyncio.sleep(0.5)
            figures["resumed_s"] = round(time.monotonic() - restarted, 1)
            await a.sync()
            return a, answers

        a, answers = asyncio.run(scenario())
        stored = log_of(backend, room)
        assert [s for s, _ in stored] == list(range(1, len(stored) + 1)), "log not gapless"
        assert len(stored) == 4, stored  # 3 before, 1 after, nothing of the outage
        last_seq = backend.sql("SELECT last_seq FROM rooms_room WHERE id = ?", (int(room),))[0][0]
        assert last_seq == 4
        assert sorted(a.events) == [1, 2, 3, 4]
        assert server.alive() and server.tracebacks() == []
        figures.update(refused_during_outage=len(answers), half_written=0)
        print("\nPOSTGRES:", figures)
        request.node.user_properties.append(("postgres", figures))
    finally:
        server.stop()
        backend.drop()
