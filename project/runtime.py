"""How a daphne process runs Python, set once at start (project/asgi.py).

The garbage collector: everything alive once Django is set up is frozen out of the
collector's scans, and the youngest generation is collected every 50,000 allocations
instead of 700. A broadcast to 10,000 sockets allocates far more than 700 objects, and
each collection walked every connection's objects: -15 to -29 % server CPU per delivered
frame at 1,000-20,000 members (BENCHMARKS.md; BENCHMARKS-ANCHORS.md §4). Memory is
unchanged: what is frozen was never going to be freed, and cycles are still collected.
"""

from __future__ import annotations

import gc

from django.conf import settings


def tune_process() -> None:
    threshold = settings.PALABRE_GC_GEN0_THRESHOLD
    if threshold:
        gc.collect()
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(threshold, gen1, gen2)
