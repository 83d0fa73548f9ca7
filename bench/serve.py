"""daphne for the profile phase, with two switches flipped by signals while 10,000 members
stay connected, so that each variant is measured on the same sockets in the same run:

- SIGUSR1: the broadcast fast lane (rooms.transport.write_now) off / on again: off, every
  frame takes the ASGI path (daphne → autobahn → Twisted), as before the fast lane;
- SIGUSR2: garbage-collector tuning on / off: ``gc.freeze()`` of everything alive, then a
  gen-0 threshold of 50,000 (BENCHMARKS-ANCHORS.md §4), or back to Python's defaults.

Usage: ``python -m bench.serve <daphne arguments>``.
"""

import gc
import os
import signal
import sys

# The variants start from Python's collector, as before project/runtime.py tuned it at
# start: SIGUSR2 switches the tuning on and off on the same sockets.
os.environ["PALABRE_GC_GEN0_THRESHOLD"] = "0"

import rooms.transport as transport

_write_now = transport.write_now
_state = {"fast_lane": True, "gc_tuned": False}
_DEFAULT_GC = gc.get_threshold()


def write_now(protocol, frame):
    return _state["fast_lane"] and _write_now(protocol, frame)


def _toggle_fast_lane(*_):
    _state["fast_lane"] = not _state["fast_lane"]


def _toggle_gc(*_):
    if _state["gc_tuned"]:
        gc.unfreeze()
        gc.set_threshold(*_DEFAULT_GC)
    else:
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, _DEFAULT_GC[1], _DEFAULT_GC[2])
    _state["gc_tuned"] = not _state["gc_tuned"]


# Before anything imports rooms.consumers (which binds write_now by name).
transport.write_now = write_now
signal.signal(signal.SIGUSR1, _toggle_fast_lane)
signal.signal(signal.SIGUSR2, _toggle_gc)

if __name__ == "__main__":
    from daphne.cli import CommandLineInterface

    sys.argv = ["daphne", *sys.argv[1:]]
    CommandLineInterface.entrypoint()
