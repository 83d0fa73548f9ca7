"""The one lock of a ballot, shared by every cast, exclusive for the seal.

Why a lock at all, and why this one (issue 6, item 8): the seal must count exactly the
votes that were accepted, and no vote may be accepted after the seal. Casts must not
serialise among themselves (150,000 votes, many in the last minutes), so they take the
lock SHARED: any number of casts hold it at once and none waits for another. The seal
takes it EXCLUSIVE: it waits until every cast that already holds it has committed or
rolled back, and every cast arriving meanwhile waits until the seal has committed, then
reads ``sealed_at`` and is refused. Both are transaction-scoped, so they are released by
the commit or rollback that ends the transaction, on whatever process it runs.

PostgreSQL: ``pg_advisory_xact_lock_shared`` / ``pg_advisory_xact_lock``, keyed on
(namespace, ballot id). No row is locked: the ballot row stays free for readers.
The argument relies on READ COMMITTED (Django's default on PostgreSQL), where each
statement sees what was committed before it started, so a statement run after the lock
is granted sees every write of the transactions the lock waited for.

SQLite: nothing to do. ``project/settings.py`` opens every transaction IMMEDIATE, which
takes the database's single write lock at BEGIN: writing transactions already run one at
a time, which is the exclusive lock for everybody (correct, if not concurrent).
"""

from django.db import connection

# Arbitrary, fixed: keeps ballot locks apart from any other advisory lock of the database.
NAMESPACE = 0x0BA110
_INT4 = 2**31


def _key(ballot_id: int) -> tuple[int, int]:
    # Two ballots sharing a key (ids past 2³¹) only share waiting, never correctness.
    return NAMESPACE, int(ballot_id) % _INT4


def _lock(function: str, ballot_id: int) -> None:
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("a ballot lock lives as long as a transaction: take it inside atomic()")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", _key(ballot_id))


def ballot_shared(ballot_id: int) -> None:
    """Taken by every cast: casts never wait for each other, only for a seal."""
    _lock("pg_advisory_xact_lock_shared", ballot_id)


def ballot_exclusive(ballot_id: int) -> None:
    """Taken by the seal: waits for the casts in flight and holds new ones off."""
    _lock("pg_advisory_xact_lock", ballot_id)
