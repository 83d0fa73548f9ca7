"""daphne's two periodic sweeps, visiting only the connections that can need them.

daphne's ``Server`` walks every connection of the process twice: each second to reap
finished applications (``application_checker``), and every two seconds for timeouts and
keepalive pings (``timeout_checker``). An idle room pays for both at every member: with
10,000 idle sockets in a process, the walks were about 40 % of its CPU (py-spy, 2 daphne
+ Redis + PostgreSQL, 20,000 idle members); at that rate a room of 150,000 would spend
more than a core on sockets that have nothing to do (BENCHMARKS.md, "Idle members"). Here:

- the application sweep runs daphne's own ``application_checker`` over the connections
  that disconnected since (a narrowed ``server.connections`` for the length of the call),
  and over all of them every APPLICATIONS_EVERY seconds;
- the timeout sweep calls each protocol's own ``check_timeouts`` when it can have
  something to do: an open socket when its ping falls due (daphne pings a socket idle
  for ``ping_interval``) or its ``websocket_timeout`` ends; any other protocol (a
  socket still connecting or closing, an HTTP request) at every sweep, as daphne does.
  The protocols wait in a wheel of two-second slots.

What each check does, and when it runs to within a sweep, is daphne's. ``install()``
patches daphne's ``Server`` once (project/runtime.py, at the start of every process
serving ``project.asgi``); a daphne whose ``Server`` no longer has these methods keeps
its own sweeps.
"""

from __future__ import annotations

import time
from collections import defaultdict

TICK_S = 2.0  # daphne's timeout_checker period
# Every APPLICATIONS_EVERY-th application sweep walks every connection, as daphne's each
# does: an application that ended while its socket stays open (an exception in a
# consumer, which daphne logs and closes the socket for) is found within that many
# seconds instead of one. Disconnections are reaped at every sweep.
APPLICATIONS_EVERY = 10
PATCHED = ("protocol_connected", "protocol_disconnected", "application_checker", "timeout_checker")
SLOT = "_palabre_sweep_slot"  # a protocol's slot in the wheel, kept on the protocol


class Sweeps:
    """One server's bookkeeping: the connections that disconnected since the last
    application sweep, and the wheel of when each protocol's timeouts are next worth
    checking. Per connection: one entry in one of the wheel's sets and its slot number."""

    def __init__(self):
        self.disconnected: set = set()
        self.application_sweeps = 0
        self.wheel: dict[int, set] = defaultdict(set)  # slot -> protocols due then
        self.next_slot: int | None = None  # the first slot not swept yet

    def due_at(self, protocol, at: float) -> None:
        """Checks ``protocol`` at the first sweep after ``at``."""
        slot = int(at // TICK_S) + 1
        self.wheel[slot].add(protocol)
        setattr(protocol, SLOT, slot)

    def forget(self, protocol) -> None:
        slot = getattr(protocol, SLOT, None)
        if slot is not None and slot in self.wheel:
            self.wheel[slot].discard(protocol)
        self.disconnected.discard(protocol)

    def take_due(self, now: float) -> set:
        current = int(now // TICK_S)
        if self.next_slot is None:
            self.next_slot = min(self.wheel, default=current)
        due: set = set()
        while self.next_slot <= current:
            due |= self.wheel.pop(self.next_slot, set())
            self.next_slot += 1
        return due


def next_check(server, protocol, now: float, open_state) -> float:
    """When ``protocol.check_timeouts()`` can next do something (daphne's ws_protocol):
    an open socket's ping (``last_ping`` moves with every frame it sends) or the end of
    its ``websocket_timeout``; anything else at the next sweep."""
    if getattr(protocol, "state", None) != open_state or (server.ping_interval or 0) <= 0:
        return now
    due = protocol.last_ping + server.ping_interval
    if server.websocket_timeout is not None and server.websocket_timeout >= 0:
        due = min(due, protocol.socket_opened + server.websocket_timeout)
    return max(now, due)


def install() -> None:
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(Server, "_palabre_sweeps", False):
        return
    if not all(hasattr(Server, name) for name in PATCHED):
        return
    from twisted.internet import reactor

    real_connected = Server.protocol_connected
    real_disconnected = Server.protocol_disconnected
    real_application_checker = Server.application_checker
    open_state = WebSocketProtocol.STATE_OPEN

    def sweeps(server) -> Sweeps:
        found = server.__dict__.get("_sweeps")
        if found is None:
            found = server.__dict__["_sweeps"] = Sweeps()
        return found

    def protocol_connected(self, protocol):
        real_connected(self, protocol)
        sweeps(self).due_at(protocol, time.time())

    def protocol_disconnected(self, protocol):
        real_disconnected(self, protocol)
        sweeps(self).disconnected.add(protocol)

    def application_checker(self):
        state = sweeps(self)
        state.application_sweeps += 1
        # A protocol that disconnects during daphne's checker (it may close a socket whose
        # application failed) lands in the new set, for the next sweep.
        looked_at, state.disconnected = state.disconnected, set()
        if state.application_sweeps % APPLICATIONS_EVERY == 0:
            real_application_checker(self)  # every connection, as daphne's each
        else:
            everything = self.connections
            self.connections = {p: everything[p] for p in looked_at if p in everything}
            try:
                real_application_checker(self)  # schedules the next sweep itself
            finally:
                narrowed, self.connections = self.connections, everything
                for protocol in looked_at:
                    if protocol in everything and protocol not in narrowed:  # daphne reaped it
                        del everything[protocol]
        for protocol in looked_at:
            if protocol not in self.connections:
                state.forget(protocol)
            elif "disconnected" in self.connections[protocol]:  # its application may still need killing
                state.disconnected.add(protocol)

    def timeout_checker(self):
        state = sweeps(self)
        now = time.time()
        for protocol in state.take_due(now):
            if protocol not in self.connections:
                state.forget(protocol)
                continue
            protocol.check_timeouts()
            state.due_at(protocol, next_check(self, protocol, time.time(), open_state))
        reactor.callLater(TICK_S, self.timeout_checker)

    Server.protocol_connected = protocol_connected
    Server.protocol_disconnected = protocol_disconnected
    Server.application_checker = application_checker
    Server.timeout_checker = timeout_checker
    Server._palabre_sweeps = True
