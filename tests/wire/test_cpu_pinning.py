"""project/runtime.py: each daphne serving Palabre runs, all its threads, on a CPU that no
other Palabre daphne of the machine holds; a daphne that finds them all taken is left to
the scheduler, a CPU freed by a daphne that exits goes to the next one, and
PALABRE_PIN_CPU=0 pins nothing. Real daphne processes, each allowed the same CPUs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Two CPUs (when the machine has them) whatever its size: the processes below are as
# many as these plus one.
ALLOWED = frozenset(sorted(os.sched_getaffinity(0))[:2])

pytestmark = pytest.mark.wire


@pytest.fixture
def start(daphnes, tmp_path):
    """``start(**env)``: one more daphne, allowed the CPUs of ALLOWED (inherited from this
    process while it starts them), its CPUs' lock files in a TMPDIR of this test's own."""
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, ALLOWED)
    yield lambda **env: daphnes(**{"TMPDIR": str(tmp_path), "PALABRE_PIN_CPU": "true", **env})
    os.sched_setaffinity(0, own)


def cpus_of(server) -> frozenset:
    """The CPUs every thread of the process may run on (one answer: they all agree)."""
    found = set()
    for task in Path(f"/proc/{server.pid}/task").iterdir():
        try:
            found.add(frozenset(os.sched_getaffinity(int(task.name))))
        except ProcessLookupError:
            continue  # a thread that ended meanwhile
    assert len(found) == 1, f"threads of one process on different CPUs: {found}"
    return found.pop()


def test_each_daphne_takes_a_cpu_of_its_own_and_one_too_many_is_left_to_the_scheduler(start):
    held = [cpus_of(start()) for _ in range(len(ALLOWED) + 1)]
    if len(ALLOWED) < 2:
        assert held == [ALLOWED] * len(held)  # one CPU allowed: nothing to choose
        return
    assert sorted((cpus for cpus in held if len(cpus) == 1), key=min) == [frozenset({cpu}) for cpu in sorted(ALLOWED)]
    assert [cpus for cpus in held if len(cpus) > 1] == [ALLOWED]


def test_a_cpu_freed_by_a_daphne_that_exits_goes_to_the_next_one(start):
    first = start()
    second = start()
    freed = cpus_of(first)
    first.stop()
    third = start()
    assert cpus_of(third) == freed
    if len(ALLOWED) >= 2:
        assert len(freed) == 1 and cpus_of(second) != freed


def test_pinning_can_be_turned_off(start):
    assert cpus_of(start(PALABRE_PIN_CPU="false")) == ALLOWED
