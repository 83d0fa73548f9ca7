"""How a daphne process runs Python, set once at start (project/asgi.py).

The garbage collector: everything alive once Django is set up is frozen out of the
collector's scans, and the youngest generation is collected every 50,000 allocations
instead of 700. A broadcast to 10,000 sockets allocates far more than 700 objects, and
each collection walked every connection's objects: -15 to -29 % server CPU per delivered
frame at 1,000-20,000 members (BENCHMARKS.md; BENCHMARKS-ANCHORS.md §4). Memory is
unchanged: what is frozen was never going to be freed, and cycles are still collected.

The switch interval: a daphne runs two busy threads, the event loop (sockets) and the
database thread. Each time one of them makes a system call (every socket write, every
SQLite statement) it gives the GIL up, and getting it back waits until the other has held
it for the switch interval: 5 ms by default. With chat in many small rooms that convoy,
not CPU, was the limit (the process used 0.6 of a core while p99 passed 200 ms); at
0.1 ms the same machine carried 1.7x the deliveries at p99 < 200 ms (commit c62bc37).
The price: more hand-offs when both threads are busy at once, as in a burst of handshakes
(about +20 % server CPU per handshake in an A/B: the notes of BENCHMARKS.md at commit
5ccfa0a). 0 restores Python's 5 ms.

autobahn's debug lines: at every new connection, autobahn pretty-prints (``pformat``) its
forty-odd options for a debug log line that its logger drops below debug level, which is
where daphne runs it. That was 11 % of a socket handshake's GIL samples (py-spy, P1). The
options are now formatted only when autobahn logs at debug level; so are the coloured
arguments (``hltype``, ``hlval``) of the debug lines autobahn writes at every read and at
every frame it sends (about 6 µs each time: a keepalive ping and its pong pay it twice).

autobahn's options, once per process: at every new connection autobahn copies its
factory's 29 options (timeouts, sizes, masking...) into the protocol instance, whose
``__dict__`` then holds them for the socket's whole life. daphne sets them once, before it
listens, and never per socket; so daphne's factory now builds its protocols from a
subclass that carries the factory's options as class attributes and nothing to copy.
Each socket reads the same values, from its class: 2.5 kB less per idle connection
(25.5 -> 22.9 kB, P1 at 1,000) and about 7 µs less per handshake.

daphne's periodic sweeps visit only the connections that can need them: project/sweeps.py.
A WebSocket handshake goes to autobahn without Twisted's HTTP parse: project/upgrades.py.

The listen queue: daphne listens with Twisted's default backlog of 50 connections that
the kernel has accepted and the process has not. A reconnect storm overflows it at once
(the bench's 100 handshakes in flight against one daphne: 18-24 dropped per 1,000), and
the kernel drops a SYN that finds it full: that client retries a second later (and 3 s,
7 s... after that), its handshake waits that long (p99 1,037 ms for P1 at 1,000 in
BENCHMARKS.md at 31ba472) and the storm lasts seconds longer. Every TCP listener daphne
opens from ``-b``/``-p``, ``-u`` or an ``-e`` endpoint without a ``backlog`` of its own
queues PALABRE_LISTEN_BACKLOG connections instead (the kernel caps it at
net.core.somaxconn, 4,096 by default since Linux 5.4); an endpoint's own ``backlog`` wins.

A core of its own: once daphne's reactor runs, the process (all its threads) is pinned to
one CPU that no other Palabre daphne on the machine holds (a lock file per CPU, held for
the process's life). Its event loop and its database thread take the GIL from each other
at every system call; on two cores each hand-off woke the other thread on the other core
and both ran with cold caches (the convoy of the switch interval, above, is the same
hand-off seen from the clock). On one core the thread that gives the GIL up usually takes
it back at once. 2 cores, P1 at 1,000 members: server CPU per handshake 0.76-0.83 ->
0.59-0.62 ms in interleaved dev runs, 0.76 -> 0.66 ms from one full make bench to the
next (BENCHMARKS.md, notes); chat in 100 rooms of 10 at p99 < 200 ms
from 24,675-26,909 to the search's 32,000 deliveries/s cap (P1 and P2); a plain
``websockets`` server (one thread) gains nothing from it. A process that finds every CPU
taken (more daphne processes than cores) is left to the scheduler. PALABRE_PIN_CPU: on
in the embedded default, off unless set in production, where daphne processes that do
not share the temporary directory (one per container) would all take the same CPU;
0 also suits a machine whose cores are busy with other work.
"""

from __future__ import annotations

import fcntl
import functools
import gc
import logging
import os
import sys
import tempfile
from pathlib import Path

from django.conf import settings

from project import sweeps, upgrades

_UNFORMATTED = "(autobahn's options: logged at debug level only)"

logger = logging.getLogger("palabre.runtime")
_held_lock = None  # the open lock file of this process's CPU, kept for its whole life


def tune_process() -> None:
    if settings.PALABRE_SWITCH_INTERVAL_S:
        sys.setswitchinterval(settings.PALABRE_SWITCH_INTERVAL_S)
    threshold = settings.PALABRE_GC_GEN0_THRESHOLD
    if threshold:
        gc.collect()
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(threshold, gen1, gen2)
    _autobahn_formats_at_debug_only()
    _autobahn_options_on_the_class()
    if settings.PALABRE_LISTEN_BACKLOG:
        _listen_backlog(settings.PALABRE_LISTEN_BACKLOG)
    sweeps.install()
    if settings.PALABRE_UPGRADE_LANE:
        upgrades.install()
    if settings.PALABRE_PIN_CPU:
        # When daphne's reactor starts (installed by sweeps.install above): not in a
        # process that imports the application without serving it (the test suite, a
        # management command), whose children would inherit its one CPU.
        from twisted.internet import reactor

        reactor.callWhenRunning(pin_to_a_free_cpu)


def pin_to_a_free_cpu() -> int | None:
    """Pins every thread of this process to the first CPU it may run on that no other
    process holds the lock of, and holds that lock until it exits. The CPU, or None."""
    global _held_lock
    if not hasattr(os, "sched_setaffinity"):
        return None  # not Linux
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    lock_dir = Path(tempfile.gettempdir()) / f"palabre-cpus-{os.getuid()}"
    try:
        lock_dir.mkdir(mode=0o700, exist_ok=True)
        for cpu in allowed:
            handle = open(lock_dir / f"cpu-{cpu}.lock", "a")  # noqa: SIM115 - held for life
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                for thread in os.listdir("/proc/self/task"):
                    try:
                        os.sched_setaffinity(int(thread), {cpu})
                    except ProcessLookupError:
                        continue  # a thread that ended meanwhile
            except OSError as error:
                handle.close()
                if isinstance(error, BlockingIOError):
                    continue  # another daphne holds it
                raise
            _held_lock = handle
            logger.info("pinned to CPU %s", cpu)
            return cpu
    except OSError:
        logger.warning("not pinned to a CPU", exc_info=True)
    return None


def _autobahn_formats_at_debug_only() -> None:
    from autobahn.twisted import websocket as twisted_websocket
    from autobahn.websocket import protocol

    # Its options, pretty-printed at every connection; and hltype/hlval, which colour the
    # arguments of a debug line at every read and every frame autobahn writes (about 6 µs
    # each time): plain text below debug level, should a line of a higher level use them.
    _below_debug(protocol, "pformat", lambda obj, *args, **kwargs: _UNFORMATTED)
    for module in (protocol, twisted_websocket):
        _below_debug(module, "hltype", lambda obj: f"<{getattr(obj, '__qualname__', type(obj).__qualname__)}>")
        _below_debug(module, "hlval", lambda val, *args, **kwargs: f"{val}")


def _autobahn_options_on_the_class() -> None:
    from daphne.ws_protocol import WebSocketFactory

    real = getattr(WebSocketFactory.buildProtocol, "__wrapped__", WebSocketFactory.buildProtocol)

    @functools.wraps(real)
    def buildProtocol(self, addr):
        if self.protocol.CONFIG_ATTRS:
            # The first socket of this factory (daphne has one): from now on its protocols
            # are of a subclass that holds the options autobahn would copy into each. A
            # function among them (perMessageCompressionAccept) stays a plain function, as
            # on an instance, not a method of the class.
            options = {name: getattr(self, name) for name in self.protocol.CONFIG_ATTRS}
            options = {name: staticmethod(value) if hasattr(value, "__get__") else value for name, value in options.items()}
            self.protocol = type(self.protocol.__name__, (self.protocol,), {**options, "CONFIG_ATTRS": ()})
        return real(self, addr)

    WebSocketFactory.buildProtocol = buildProtocol


def _listen_backlog(backlog: int) -> None:
    from daphne import server

    real = getattr(server.serverFromString, "__wrapped__", server.serverFromString)

    @functools.wraps(real)
    def serverFromString(reactor, description):
        kind, _, rest = description.partition(":")
        if kind in ("tcp", "tcp6", "unix") and "backlog=" not in rest:
            description = f"{description}:backlog={backlog}"
        return real(reactor, description)

    server.serverFromString = serverFromString  # what daphne's Server.run listens with


def _below_debug(module, name: str, plain) -> None:
    """``module.name`` as it was at debug level (or finer), ``plain`` otherwise."""
    from autobahn.twisted.websocket import WebSocketServerProtocol  # daphne's sockets' base

    current = getattr(module, name)
    real = getattr(current, "__wrapped__", current)  # once, however often called

    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        # txaio's logger keeps its level there; were that to change, format as autobahn did.
        if getattr(WebSocketServerProtocol.log, "_log_level", "debug") in ("debug", "trace"):
            return real(*args, **kwargs)
        return plain(*args, **kwargs)

    setattr(module, name, wrapper)
