"""Issue 6, items 4 and 8, on PostgreSQL: hundreds of casts at once around the threshold,
each on its own connection, as the last votes arrive on several processes.

Exactly one seal; its counts are exactly the receipts handed out; every receipt is on
the board with an inclusion proof; every refused cast was refused ``ballot_closed`` and
left nothing behind; and the casts really ran side by side (several held the ballot
lock at once), so the exactness doesn't come from serialising them.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from ballots import selectors, services
from ballots.models import Ballot, Elector, Vote
from ballots.verify import verify_ballot
from crypto import merkle
from rooms.errors import ActionError
from rooms.models import Event, Mediation
from tests.ballots.conftest import open_ballot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 40  # connections of their own; PostgreSQL's default max is 100, shared by all


def run_in_threads(jobs, work, *, threads=THREADS):
    """Runs ``work(job)`` for every job across ``threads`` threads, all starting at once,
    each thread on its own database connection (closed at the end)."""
    chunks = [jobs[i::threads] for i in range(threads)]
    barrier = threading.Barrier(threads)
    results = []
    lock = threading.Lock()

    def worker(chunk):
        try:
            barrier.wait()
            for job in chunk:
                outcome = work(job)
                with lock:
                    results.append((job, outcome))
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker, chunk) for chunk in chunks]:
            future.result()
    return results


def cast_or_code(member, ballot_id, room_id, choice):
    close_old_connections()
    try:
        member, ballot = services.check_vote(member_id=member.pk, room_id=room_id, ballot_id=ballot_id)
        return ("receipt", services.vote_cast(member=member, ballot=ballot, choice=choice))
    except ActionError as error:
        return ("error", error.code)


class LockWatcher:
    """Samples pg_locks from its own connection: the most casts seen holding the ballot's
    shared advisory lock at the same instant."""

    def __init__(self):
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self):
        try:
            while not self._stop.is_set():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted"
                    )
                    self.most = max(self.most, cursor.fetchone()[0])
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def assert_one_exact_seal(ballot, results):
    ballot = Ballot.objects.get(pk=ballot.pk)
    assert ballot.sealed_at is not None
    assert Event.objects.filter(room_id=ballot.room_id, type="ballot.sealed").count() == 1
    receipts = {outcome[1]: job[1] for job, outcome in results if outcome[0] == "receipt"}
    errors = [outcome[1] for _job, outcome in results if outcome[0] == "error"]
    assert set(errors) <= {"ballot_closed"}, set(errors)
    assert len(receipts) + len(errors) == len(results)
    # The counts are exactly the receipts handed out: no vote lost, none after the seal.
    assert ballot.accept == sum(c == "accept" for c in receipts.values())
    assert ballot.refuse == sum(c == "refuse" for c in receipts.values())
    assert Vote.objects.filter(ballot=ballot).count() == len(receipts)
    assert Elector.objects.filter(ballot=ballot, has_voted=True).count() == len(receipts)
    board = {leaf: choice for leaf, choice in Vote.objects.filter(ballot=ballot).values_list("commitment", "choice")}
    for receipt, choice in receipts.items():
        leaf = merkle.leaf_hash(receipt, str(ballot.pk), choice)
        assert board[leaf] == choice
        proof = selectors.proof_of(ballot, receipt)
        assert merkle.verify_proof(proof["leaf"], proof["path"], ballot.document["merkle_root"])
    assert verify_ballot(ballot.pk) == []
    return ballot, receipts, errors


def shuffled(voters, choices, seed):
    jobs = list(zip(voters, choices, strict=True))
    random.Random(seed).shuffle(jobs)
    return jobs


def test_hundreds_of_casts_across_the_acceptance_threshold(mediation, mediator, offer, crowd):
    assert connection.vendor == "postgresql"
    voters = crowd(600)  # 75 %: 450 accepts carry it
    ballot = open_ballot(mediator, offer)
    jobs = shuffled(voters, ["accept"] * 500 + ["refuse"] * 100, seed=1)
    with LockWatcher() as watcher:
        results = run_in_threads(jobs, lambda job: cast_or_code(job[0], ballot.pk, ballot.room_id, job[1]))
    sealed, receipts, errors = assert_one_exact_seal(ballot, results)
    assert sealed.outcome == "accepted" and sealed.seal_reason == "certain"
    assert sealed.accept >= 450 and errors  # sealed before the last casts, which were refused
    assert watcher.most > 1, "casts never held the ballot lock side by side"
    # The agreement is recorded once, and the mediation closed once.
    assert Mediation.objects.get(pk=mediation.pk).outcome == "agreement"
    assert Event.objects.filter(room_id=ballot.room_id, type="agreement.recorded").count() == 1
    assert Event.objects.filter(room_id=ballot.room_id, type="room.closed").count() == 1


def test_hundreds_of_casts_across_the_rejection_threshold(mediator, offer, crowd):
    voters = crowd(600)  # rejected once refusals pass 600 − 450 = 150
    ballot = open_ballot(mediator, offer)
    jobs = shuffled(voters, ["refuse"] * 200 + ["accept"] * 400, seed=2)
    results = run_in_threads(jobs, lambda job: cast_or_code(job[0], ballot.pk, ballot.room_id, job[1]))
    sealed, _receipts, _errors = assert_one_exact_seal(ballot, results)
    assert sealed.outcome == "rejected" and sealed.refuse >= 151


def test_casts_racing_the_mediators_close_and_many_sealers(mediator, plenary, offer, crowd):
    voters = crowd(400)  # never certain: only 120 accepts and 60 refusals are cast
    ballot = open_ballot(mediator, offer)
    jobs = [("cast", job) for job in shuffled(voters[:180], ["accept"] * 120 + ["refuse"] * 60, seed=3)]
    jobs[90:90] = [("close", None)] * 20  # twenty closes land in the middle of the casts

    def work(job):
        kind, cast = job
        if kind == "cast":
            return cast_or_code(cast[0], ballot.pk, ballot.room_id, cast[1])
        close_old_connections()
        try:
            checked = services.check_ballot_close(member_id=mediator.pk, room_id=plenary.pk, ballot_id=ballot.pk)
            services.ballot_close(ballot=checked)
            return ("closed", None)
        except ActionError as error:
            return ("close_refused", error.code)

    results = run_in_threads(jobs, work)
    closes = [outcome for (kind, _), outcome in results if kind == "close"]
    assert closes.count(("closed", None)) == 1
    assert set(closes) - {("closed", None)} <= {("close_refused", "ballot_closed")}
    casts = [((kind, cast[1] if cast else None), outcome) for (kind, cast), outcome in results if kind == "cast"]
    sealed, receipts, _errors = assert_one_exact_seal(ballot, casts)
    assert sealed.seal_reason == "closed" and sealed.outcome == "rejected"


def test_casts_racing_the_deadline_and_the_worker(mediator, offer, crowd):
    voters = crowd(300)
    ballot = open_ballot(mediator, offer, seconds=2)
    deadline = ballot.closes_at
    jobs = [("cast", job) for job in shuffled(voters[:200], ["accept"] * 100 + ["refuse"] * 100, seed=4)]
    jobs += [("worker", None)] * 40

    def work(job):
        kind, cast = job
        if kind == "worker":
            close_old_connections()
            while timezone.now() < deadline + timedelta(milliseconds=300):
                services.ballots_seal_due()
                time.sleep(0.01)
            return ("worker", None)
        # Spread the casts over the deadline: some before, some after.
        time.sleep(random.random() * 3)
        return cast_or_code(cast[0], ballot.pk, ballot.room_id, cast[1])

    results = run_in_threads(jobs, work)
    casts = [((kind, cast[1]), outcome) for (kind, cast), outcome in results if kind == "cast"]
    sealed, receipts, errors = assert_one_exact_seal(ballot, casts)
    # 100 refusals of 300 can't make it certain (150 needed): only the deadline sealed it.
    assert sealed.seal_reason == "deadline" and sealed.sealed_at >= deadline
    assert receipts and errors
