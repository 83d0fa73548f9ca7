"""One pass of the deadline worker (``manage.py run_deadlines``; in the embedded default,
a task of the daphne process). Other apps add their passes (ballots seal theirs first,
since a ballot's deadline is never after its mediation's)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from rooms import notices, record, services

PASSES: list[tuple[int, Callable[[datetime], int]]] = [
    (40, services.mediations_advance_due),
    (50, services.mediations_close_due),
    (55, record.agreement_records_due),
    # Email leaves from the worker only, after the passes that give it news (issue 10).
    (60, notices.notices_enqueue_due),
    (80, notices.notices_send_due),
    (90, services.mediations_shred_due),
]


def register(order: int, run: Callable[[datetime], int]) -> None:
    if all(existing is not run for _, existing in PASSES):
        PASSES.append((order, run))
        PASSES.sort(key=lambda item: item[0])


def run_once(now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    return {run.__name__: run(now) for _, run in PASSES}
