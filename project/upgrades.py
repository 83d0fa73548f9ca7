"""A WebSocket handshake handed straight to autobahn: the one seam of daphne's HTTP side.

daphne reads every connection as HTTP first. Twisted's ``HTTPChannel`` parses the request
line by line into a ``Request`` (its headers, its URI and query arguments, an idle timer,
a producer registration), daphne's ``WebRequest.process`` validates it, finds the
``Upgrade: websocket`` header, then writes the request back into bytes and feeds them to
autobahn, which parses them again. For a socket's handshake the first parse is work for
nothing: in py-spy, Twisted's HTTP side was about a sixth of a daphne's handshake (P2,
1,000 members), none of it needed by the socket.

Here the first protocol of every accepted connection is an ``UpgradeLane``. At the
connection's first read it looks at the bytes once (``websocket_upgrade``): exactly one
complete ``GET ... HTTP/1.1`` request whose single ``Upgrade`` header says ``websocket``,
no body, no repeated header (daphne would join them), nothing that daphne's or Twisted's
own checks would refuse. Those bytes go as they came to the WebSocket protocol daphne
would have built (``server.ws_factory``), with the raw query string daphne would have
given it; autobahn and daphne then do everything they do on daphne's path (the
handshake's checks and answer, the scope, the application): the same scope and the same
101, byte for byte (tests/project/test_upgrades.py). Anything else (a page, a request split
over several reads, a header the lane does not know to be harmless) goes with the same
bytes to daphne's own HTTP protocol: the fallback is daphne as it is. The lane keeps
HTTPChannel's guard against a connection that never says anything (closed after the
factory's ``timeOut``). Nor is Twisted's ``HTTPChannel`` left registered as the socket's
producer, as daphne's path leaves it (doing nothing: rooms.transport.forget_upgrade_request
unregisters it once the socket is open).

Measured (dev A/B, interleaved, the bench's 1,000-member connection step, medians of 7
runs each): server CPU per handshake P1 0.344 / 0.389 -> 0.300 / 0.311 ms, P2 0.444 / 0.467
-> 0.411 / 0.400 ms (D 0.17-0.21) in one session; P2 0.50 / 0.51 -> 0.39 / 0.44 ms in
another (BENCHMARKS.md).
PALABRE_UPGRADE_LANE=false sends every connection down daphne's path.
"""

from __future__ import annotations

import functools

from daphne.utils import HEADER_NAME_RE, INVALID_HEADER_VALUE_BYTES
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import ProtocolWrapper

# The lane reads a request that came whole in one read, and no larger than Twisted's own
# limit on a request's headers (HTTPChannel.totalHeadersSize).
MAX_REQUEST_BYTES = 16_384
# Twisted refuses these in a header value (RFC 9110 5.5); daphne refuses its own set.
_REFUSED_IN_VALUES = frozenset(b"\x00\r\n") | INVALID_HEADER_VALUE_BYTES
# Headers of a request with a body, which daphne would pass on after the headers (and for
# ``Expect: 100-continue``, Twisted answers 100 before anything else).
_BODY_HEADERS = (b"content-length", b"transfer-encoding", b"expect")


def websocket_upgrade(data: bytes) -> bytes | None:
    """The raw query string of ``data`` if it is one complete WebSocket upgrade request
    that daphne would pass to autobahn unchanged in meaning, else None (daphne's path)."""
    if len(data) > MAX_REQUEST_BYTES or not data.startswith(b"GET /") or not data.endswith(b"\r\n\r\n"):
        return None
    request_line, *header_lines = data[:-4].split(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        return None
    seen: set[bytes] = set()
    upgrade = None
    for line in header_lines:
        name, colon, value = line.partition(b":")
        name = name.lower()
        value = value.strip(b" \t")
        if (
            not colon
            or not HEADER_NAME_RE.fullmatch(name)
            or name in seen  # daphne would join repeated headers before autobahn reads them
            or name in _BODY_HEADERS
            or not _REFUSED_IN_VALUES.isdisjoint(value)
        ):
            return None
        seen.add(name)
        if name == b"upgrade":
            upgrade = value
    if upgrade is None or upgrade.lower() != b"websocket":
        return None
    path, _, query = parts[1].partition(b"?")
    if not (path.isascii() and query.isascii()):
        return None  # daphne answers 400
    return query


class UpgradeLane(Protocol):
    """The protocol of a connection until its first read, which decides what follows."""

    def __init__(self, factory, addr, http_protocol):
        self.factory = factory  # daphne's HTTPFactory
        self.addr = addr
        self.http_protocol = http_protocol  # daphne's own buildProtocol
        self.idle = None

    def connectionMade(self):
        if self.factory.timeOut:
            self.idle = self.factory.reactor.callLater(self.factory.timeOut, self.transport.loseConnection)

    def dataReceived(self, data):
        self._stop_idle()
        transport = self.transport
        query = websocket_upgrade(data)
        if query is not None:
            protocol = self.factory.server.ws_factory.buildProtocol(transport.getPeer())
            protocol._raw_query_string = query  # as daphne's WebRequest passes it
        else:
            protocol = self.http_protocol(self.factory, self.addr)
        if isinstance(transport, ProtocolWrapper):  # TLS: as daphne hands its sockets over
            transport.wrappedProtocol = protocol
        else:
            transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(data)

    def connectionLost(self, reason=None):
        self._stop_idle()

    def _stop_idle(self):
        if self.idle is not None and self.idle.active():
            self.idle.cancel()
        self.idle = None


def install() -> None:
    """Every connection daphne's HTTP factory accepts starts in an ``UpgradeLane``."""
    from daphne.http_protocol import HTTPFactory

    real = getattr(HTTPFactory.buildProtocol, "__wrapped__", HTTPFactory.buildProtocol)

    @functools.wraps(real)
    def buildProtocol(self, addr):
        return UpgradeLane(self, addr, real)

    HTTPFactory.buildProtocol = buildProtocol
