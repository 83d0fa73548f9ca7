"""The one seam below ASGI: from a consumer's ``send`` callable to daphne's Twisted
protocol, to read how many bytes a socket has not yet taken.

ASGI gives an application no view of the socket's buffer, yet a room of 150,000 must close
a connection that falls behind instead of buffering for it forever (DESIGN.md, "A slow
client never stalls a room"). daphne builds ``send`` as ``partial(server.handle_reply,
protocol)`` and Channels' session middleware wraps it (``real_send``); we unwrap those two
known shapes and nothing else. Under another server (or in tests with
``WebsocketCommunicator``) this finds nothing and callers fall back to plain ASGI.
"""

from __future__ import annotations

import functools


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
