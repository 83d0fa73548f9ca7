"""Run as ``python -m tests.project.lane_probe`` (tests/project/test_upgrades.py): the same
requests fed to a connection through project/upgrades.py and to one through daphne's own
HTTP protocol, each on daphne's factories as its Server.run builds them (with a stand-in
for the Server that records the scope of each application it is asked for). Prints what
each side did, as JSON, on its last line. In a process of its own: it imports Twisted's
default reactor, which daphne's processes replace with their own."""

from __future__ import annotations

import json

from daphne.http_protocol import HTTPFactory
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from project.upgrades import UpgradeLane

DAPHNES_OWN = HTTPFactory.buildProtocol  # not installed here: the lane is built by hand
TIMEOUT = 60.0
UPGRADE = (
    b"GET /ws/rooms/7/?lang=fr HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8000\r\n"
    b"Connection: Upgrade\r\n"
    b"Pragma: no-cache\r\n"
    b"Upgrade: websocket\r\n"
    b"Origin: http://127.0.0.1:8000\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0\r\n"
    b"Accept-Language: fr-FR,fr;q=0.9,en;q=0.8\r\n"
    b"Cookie: sessionid=abc123; django_language=fr\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Sec-WebSocket-Protocol: palabre.v1\r\n"
    b"\r\n"
)


class Transport(StringTransport):
    """A socket's transport as Twisted's TCP one behaves where StringTransport is stricter:
    unregistering a producer when none is registered (autobahn unregisters at every close;
    daphne's HTTP protocol registered itself, the lane registers nothing) and resuming
    reading after a close (daphne's upgrade does, after autobahn refused a handshake) are
    no errors."""

    def unregisterProducer(self):
        self.producer = None

    def resumeProducing(self):
        if not self.disconnecting:
            super().resumeProducing()


class Server:
    """What daphne's protocols ask of daphne's Server."""

    root_path = ""
    server_name = "Daphne"
    proxy_forwarded_address_header = None
    proxy_forwarded_port_header = None
    proxy_forwarded_proto_header = None

    def __init__(self):
        self.scopes: list[dict] = []
        self.ws_factory = WebSocketFactory(self, server="Daphne")
        self.ws_factory.setProtocolOptions(autoPingTimeout=30, allowNullOrigin=True, openHandshakeTimeout=5)

    def protocol_connected(self, protocol):
        pass

    def protocol_disconnected(self, protocol):
        pass

    def log_action(self, *args):
        pass

    def create_application(self, protocol, scope):
        """Records the scope (as JSON can carry it); the application itself is not needed."""
        self.scopes.append({
            **scope,
            "headers": [[name.decode(), value.decode()] for name, value in scope["headers"]],
            "raw_path": scope["raw_path"].decode(),
            "query_string": scope["query_string"].decode(),
        })
        return defer.Deferred()


def connection(lane: bool, reads: list[bytes], wrapped: bool = False) -> dict:
    """One connection fed ``reads``, its socket accepted by the application if one was asked
    for; what the connection became, the scopes asked for, what it wrote. ``wrapped``: behind
    a protocol wrapper, as under TLS."""
    server = Server()
    factory = HTTPFactory(server)
    factory.timeOut = TIMEOUT
    factory.reactor = Clock()
    addr = IPv4Address("TCP", "127.0.0.1", 40_000)
    transport = Transport(hostAddress=IPv4Address("TCP", "127.0.0.1", 8000), peerAddress=addr)
    built = []  # the HTTP protocols the lane asked daphne for

    def daphnes_own(factory, addr):
        built.append(addr)
        return DAPHNES_OWN(factory, addr)

    first = UpgradeLane(factory, addr, daphnes_own) if lane else DAPHNES_OWN(factory, addr)
    if wrapped:
        first = ProtocolWrapper(WrappingFactory(factory), first)
    transport.protocol = first
    first.makeConnection(transport)
    for data in reads:
        transport.protocol.dataReceived(data)
    protocol = transport.protocol.wrappedProtocol if wrapped else transport.protocol
    if isinstance(protocol, WebSocketProtocol) and server.scopes:
        protocol.handshake_deferred.callback(None)  # the application accepts (daphne's serverAccept)
    if isinstance(protocol, WebSocketProtocol) and protocol.openHandshakeTimeoutCall is not None:
        protocol.openHandshakeTimeoutCall.cancel()  # on Twisted's global reactor, never run here
    return {
        "protocol": type(protocol).__name__,
        "http protocols built": len(built),
        "websocket": isinstance(protocol, WebSocketProtocol),
        "scopes": server.scopes,
        "written": transport.value().decode("latin-1"),
        "closing": transport.disconnecting,
    }


def idle(reads: list[bytes], lost: bool = False) -> dict:
    """A lane connection: closed after the factory's timeOut if it never says anything."""
    server = Server()
    factory = HTTPFactory(server)
    factory.timeOut = TIMEOUT
    clock = factory.reactor = Clock()
    addr = IPv4Address("TCP", "127.0.0.1", 40_000)
    transport = Transport(peerAddress=addr)
    lane = UpgradeLane(factory, addr, DAPHNES_OWN)
    transport.protocol = lane
    lane.makeConnection(transport)
    clock.advance(TIMEOUT - 1)
    before = transport.disconnecting
    for data in reads:
        transport.protocol.dataReceived(data)
    if lost:
        lane.connectionLost(None)
    clock.advance(TIMEOUT * 2)
    return {"before": before, "closed": transport.disconnecting, "timers": len(clock.getDelayedCalls())}


def both(reads: list[bytes], wrapped: bool = False) -> dict:
    return {"lane": connection(True, reads, wrapped), "daphne": connection(False, reads, wrapped)}


out = {
    "upgrade": both([UPGRADE]),
    "split": both([UPGRADE[:40], UPGRADE[40:]]),
    "wrapped": both([UPGRADE], wrapped=True),
    "page": both([b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"]),
    "refused": both([UPGRADE.replace(b"Pragma: no-cache", b"Pragma: no\x0bcache")]),
    "not websocket": both([UPGRADE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"")]),
    "idle": {
        "silent": idle([]),
        "upgrade": idle([UPGRADE]),
        "page": idle([b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"]),
        "lost": idle([], lost=True),
    },
}
print(json.dumps(out))
