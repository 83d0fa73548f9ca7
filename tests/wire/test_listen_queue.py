"""A burst of connections that arrives while a daphne is busy waits in its listen queue
instead of being dropped (project/runtime.py, PALABRE_LISTEN_BACKLOG): with Twisted's
queue of 50, the kernel drops the SYN of every connection past it, and that client
retries a second later, a reconnect storm's handshakes with it."""

from __future__ import annotations

import os
import select
import signal
import socket
import time

import pytest

pytestmark = pytest.mark.wire

BURST = 300


def handshakes_completed(port: int, count: int, within_s: float) -> int:
    """Opens ``count`` TCP connections at once; how many the kernel completed within
    ``within_s`` seconds (a completed one is writable; a dropped SYN's stays pending)."""
    opened = [socket.socket() for _ in range(count)]
    try:
        for sock in opened:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        pending, done = list(opened), 0
        deadline = time.monotonic() + within_s
        while pending and time.monotonic() < deadline:
            _, writable, _ = select.select([], pending, [], deadline - time.monotonic())
            for sock in writable:
                pending.remove(sock)
                done += sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        return done
    finally:
        for sock in opened:
            sock.close()


def test_a_burst_of_connections_to_a_busy_daphne_is_queued_not_dropped(daphnes):
    server = daphnes()
    os.kill(server.pid, signal.SIGSTOP)  # busy: it accepts nothing meanwhile
    try:
        completed = handshakes_completed(server.port, BURST, within_s=5)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert completed == BURST
