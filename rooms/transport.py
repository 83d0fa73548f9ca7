"""The one seam below ASGI: from a consumer's ``send`` callable to daphne's Twisted
protocol, to read how many bytes a socket has not yet taken, and to write broadcast frames
straight to the socket (the fast lane, below).

ASGI gives an application no view of the socket's buffer, yet a room of 150,000 must close
a connection that falls behind instead of buffering for it forever (DESIGN.md, "A slow
client never stalls a room"). daphne builds ``send`` as ``partial(server.handle_reply,
protocol)`` and Channels' session middleware wraps it (``real_send``); we unwrap those two
known shapes and nothing else. Under another server (or in tests with
``WebsocketCommunicator``) this finds nothing and callers fall back to plain ASGI.
"""

from __future__ import annotations

import functools
import struct

from twisted.web.http import HTTPChannel


def daphne_protocol(send):
    for _ in range(4):
        if isinstance(send, functools.partial):
            candidate = send.args[0] if send.args else None
            if candidate is not None and hasattr(candidate, "transport") and hasattr(candidate, "sendMessage"):
                return candidate
            return None
        owner = getattr(send, "__self__", None)
        send = getattr(owner, "real_send", None)
        if send is None:
            return None
    return None


def backlog_bytes(protocol) -> int:
    """Bytes written to the socket's transport and not yet sent (Twisted's
    ``FileDescriptor`` keeps ``dataBuffer`` from ``offset`` on, plus ``_tempDataLen``)."""
    transport = getattr(protocol, "transport", None)
    if transport is None:
        return 0
    buffered = getattr(transport, "dataBuffer", b"")
    return len(buffered) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


def forget_upgrade_request(protocol) -> None:
    """Once a socket is open, drops what daphne and autobahn keep of its HTTP upgrade
    request for the socket's whole life and never read again: autobahn's raw request
    bytes and parsed headers (its ``ConnectionRequest`` shares that dict; daphne reads
    only its ``path``), and daphne's decoded header list, which is also the ASGI scope's
    ``headers`` (read once, at the handshake: ``rooms.consumers``). About 2 kB per idle
    connection (BENCHMARKS.md).

    And, where the handshake took daphne's own path (one the upgrade lane of
    project/upgrades.py left to it, which builds no channel), Twisted's HTTP channel, with
    daphne's request for the upgrade (its headers, its addresses, its body buffer): daphne
    hands the socket to the WebSocket protocol but leaves the channel registered as the
    socket's producer, which keeps them all alive. That producer does nothing for an
    upgraded socket: the channel pauses its socket for a full send buffer only between
    requests, and the upgrade request never ends (``HTTPChannel.pauseProducing``).
    Released: 68 objects the collector tracks per connection instead of 93 (each one it
    walks at least twice), and 0.9-1.5 kB less.
    They go by reference counting, at once: the request and its channel name each other,
    and the channel forgets its request here; left as that cycle they were 24 objects of
    garbage per handshake waiting for a full collection (the one that found 19,774 after
    a step of 900, 36 ms; P1, gc callbacks and ``gc.DEBUG_SAVEALL``), and 1.3-1.5 kB more
    per connection meanwhile."""
    protocol.http_request_data = b""
    headers = getattr(protocol, "http_headers", None)
    if isinstance(headers, dict):
        headers.clear()
    clean = getattr(protocol, "clean_headers", None)
    if isinstance(clean, list):
        clean.clear()
    transport = getattr(protocol, "transport", None)
    channel = getattr(transport, "producer", None)
    if isinstance(channel, HTTPChannel):
        transport.unregisterProducer()
        channel.requests.clear()


def forget_closed_socket(protocol) -> None:
    """Once a socket is closed, lets its protocol go by reference counting. autobahn
    resolves the protocol's ``is_closed`` with the protocol itself, a cycle (protocol ->
    deferred -> protocol) that kept each closed socket's protocol, transport, daphne's
    queue and autobahn's stats and UTF-8 validator (30 objects) for the collector to find:
    a room's reconnect storm left it a closed socket's worth for every member (P1,
    ``gc.DEBUG_SAVEALL`` after 1,000 sockets dropped: 30,024 garbage objects, 24 after
    this). Nothing reads that result once the socket is closed: its callbacks ran when
    it was resolved."""
    closed = getattr(protocol, "is_closed", None)
    if getattr(closed, "called", False) and getattr(closed, "result", None) is protocol:
        closed.result = None


# --- the broadcast fast lane ---------------------------------------------------------------
#
# Why: a room of 150,000 is one text frame written to 150,000 sockets. Through ASGI ``send``
# each write goes daphne → autobahn (framing, bookkeeping) → Twisted, which buffers it and
# registers the socket for writability, then writes it on a later turn of the loop and
# unregisters it: two epoll_ctl calls and a pile of short-lived objects per member and per
# frame. Measured (BENCHMARKS.md, and BENCHMARKS-ANCHORS.md §4), that keeps daphne at 4-6.5×
# the CPU of a plain ``websockets`` broadcast, however lean the application is. Framing the
# frame once per broadcast and writing it straight to each socket whose transport holds
# nothing (what asyncio's transports and ``websockets.broadcast`` do) reaches that plain
# broadcast. Everything else keeps the normal path: a socket with bytes already queued (a
# slow reader) gets the frame through ASGI ``send``, after what is queued, so frames stay in
# order; TLS inside daphne, permessage-deflate, a closing socket or another server: normal
# path. The hub falls back per connection, per frame (``write_now`` returns False).


def prepare(text: str) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2: server frames are never masked), the
    bytes autobahn's ``sendMessage`` would write for ``text`` without compression."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def is_open(protocol) -> bool:
    """False once the WebSocket is closing or closed: autobahn raises on a send then."""
    return protocol.state == _STATE_OPEN


def write_now(protocol, frame: bytes) -> bool:
    """Writes a ``prepare``d frame to the protocol's socket if nothing is queued ahead of it;
    False (nothing written) when the caller must use the normal ASGI send instead."""
    if protocol.state != _STATE_OPEN or protocol._perMessageCompress is not None or protocol.send_queue:
        return False
    transport = protocol.transport
    # tcp.Connection's TLS flag is False only for a plain TCP socket (True under startTLS;
    # a TLS endpoint's transport has no such attribute and gets the default True).
    if (
        transport is None
        or getattr(transport, "TLS", True)
        or not transport.connected
        or transport.disconnecting
        or transport._tempDataLen
        or len(transport.dataBuffer) > transport.offset
    ):
        return False
    try:
        sent = transport.socket.send(frame)
    except BlockingIOError:
        sent = 0
    except OSError:
        return False  # a broken socket: Twisted's own write path notices and closes it
    if sent < len(frame):
        # The socket took part of it: Twisted queues the rest, before anything later.
        transport.write(frame[sent:])
    return True


_STATE_OPEN = 3  # autobahn's WebSocketProtocol.STATE_OPEN
