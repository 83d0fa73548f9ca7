"""project/sweeps.py: daphne's periodic sweeps still ping, time out and reap as daphne
does, and no longer walk the idle sockets that have nothing due."""

from __future__ import annotations

import asyncio
import time

import pytest

from project import sweeps


@pytest.fixture
def server(monkeypatch):
    from daphne.server import Server
    from twisted.internet import reactor

    sweeps.install()
    monkeypatch.setattr(reactor, "callLater", lambda *args, **kwargs: None)  # the test drives the sweeps
    clock = Clock(1000.0)
    monkeypatch.setattr(time, "time", clock)
    server = Server(application=None, endpoints=["tcp:port=0"], ping_interval=20, websocket_timeout=86400)
    server.connections = {}
    server.clock = clock
    return server


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def socket_class():
    from daphne.ws_protocol import WebSocketProtocol

    class Socket(WebSocketProtocol):
        """daphne's socket protocol without a transport: what its timeout checks do is recorded."""

        def __init__(self, server):
            self.server, self.client_addr, self.path = server, ("127.0.0.1", 50000), b"/ws/rooms/1/"
            self.socket_opened = self.last_ping = time.time()
            self.state = self.STATE_CONNECTING
            self.checks, self.pings, self.closed, self.rejected = 0, [], False, False

        def check_timeouts(self):
            self.checks += 1
            super().check_timeouts()

        def _sendAutoPing(self):
            self.pings.append(time.time())

        def serverClose(self, code=None):
            self.closed = True

        def serverReject(self):
            self.rejected = True

    return Socket


def connect(server, n=1, state="open"):
    Socket = socket_class()
    socks = []
    for _ in range(n):
        sock = Socket(server)
        server.protocol_connected(sock)
        if state == "open":
            sock.state = sock.STATE_OPEN
        socks.append(sock)
    return socks


class NoWalk(dict):
    def __iter__(self):
        raise AssertionError("walked every connection")

    def items(self):
        raise AssertionError("walked every connection")

    keys = values = items


def sweep_until(server, until):
    """daphne's timeout sweep every two seconds up to ``until``."""
    while server.clock.now + sweeps.TICK_S <= until:
        server.clock.now += sweeps.TICK_S
        server.timeout_checker()


def test_an_idle_socket_is_pinged_every_ping_interval_and_otherwise_left_alone(server):
    socks = connect(server, 1_000)
    sweep_until(server, 1002)  # new sockets are looked at once, as daphne does
    assert {s.checks for s in socks} == {1} and not any(s.pings for s in socks)

    sweep_until(server, 1020)  # nothing is due: no socket is visited
    assert {s.checks for s in socks} == {1}

    sweep_until(server, 1022)  # idle for more than 20 s: pinged
    assert {tuple(s.pings) for s in socks} == {(1022,)}
    sweep_until(server, 1044)
    assert {tuple(s.pings) for s in socks} == {(1022, 1044)}
    assert {s.checks for s in socks} == {3}


def test_a_socket_that_sent_a_frame_is_pinged_20_s_after_it(server):
    (quiet, talking) = connect(server, 2)
    sweep_until(server, 1010)
    talking.last_ping = 1010.0  # daphne's onMessage
    sweep_until(server, 1034)
    assert quiet.pings == [1022]
    assert talking.pings == [1032]


def test_a_socket_still_connecting_is_rejected_after_the_connect_timeout(server):
    server.websocket_connect_timeout = 30
    (sock,) = connect(server, state="connecting")
    sweep_until(server, 1030)
    assert not sock.rejected
    sweep_until(server, 1032)
    assert sock.rejected


def test_a_socket_is_closed_when_its_websocket_timeout_ends(server):
    server.websocket_timeout = 50
    (sock,) = connect(server)
    sweep_until(server, 1050)
    assert not sock.closed and sock.pings == [1022, 1044]
    sweep_until(server, 1052)
    assert sock.closed


def test_a_closed_socket_leaves_the_timeout_sweep(server):
    (gone, staying) = connect(server, 2)
    server.connections = NoWalk(server.connections)
    sweep_until(server, 1002)
    del server.connections[gone]  # reaped by the application sweep
    sweep_until(server, 1024)
    assert gone.checks == 1 and gone.pings == []
    assert staying.pings == [1022]


async def test_the_application_sweep_reaps_disconnections_each_second_and_walks_all_every_ten(server):
    release = asyncio.Event()

    async def application(scope, receive, send):
        if scope["path"] != "/ends":
            await release.wait()

    server.application = application
    server.application_close_timeout = 10
    ends, runs, lingers, leaves = connect(server, 4)
    for sock, path in ((ends, "/ends"), (runs, "/runs"), (lingers, "/lingers"), (leaves, "/ends")):
        server.create_application(sock, {"type": "websocket", "path": path})
    await server.connections[ends]["application_instance"]  # /ends finish, their sockets stay open
    await server.connections[leaves]["application_instance"]
    server.connections = NoWalk(server.connections)  # sweeps 1 to 9 look only at what disconnected

    server.protocol_disconnected(leaves)
    server.protocol_disconnected(lingers)  # its application does not stop
    server.application_checker()
    assert leaves not in server.connections  # reaped within a second
    assert lingers in server.connections and "application_instance" in server.connections[ends]

    server.clock.now += 11  # past application_close_timeout: daphne cancels it
    server.application_checker()
    instance = server.connections[lingers]["application_instance"]
    await asyncio.sleep(0)
    assert instance.cancelled()
    server.application_checker()
    assert lingers not in server.connections
    for _ in range(6):
        server.application_checker()
    assert "application_instance" in server.connections[ends]

    server.connections = dict(dict.items(server.connections))
    server.application_checker()  # the tenth: every connection, as daphne's each
    assert server.connections[ends] == {"connected": 1000.0}  # its application reaped, its socket kept
    assert list(server.connections) == [ends, runs]
    release.set()
