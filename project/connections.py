"""Database connections under ASGI: persistent for the sockets, closed after each request.

Django runs each HTTP request under ASGI on a thread of its own (``ThreadSensitiveContext``),
which ends with the request, and its docs say to disable persistent connections there. But
a daphne's sockets do all their database work on one long-lived thread
(``database_sync_to_async``), where opening a connection per hop was half of a handshake's
server CPU (BENCHMARKS.md: 7.3 against 3.6 ms on SQLite). So ``CONN_MAX_AGE`` stays on
(settings), and each HTTP request closes its own connection when it finishes: without
this, the connections of finished requests waited for the garbage collector, and on
PostgreSQL a burst of requests ran out of server connections (schemathesis in make test).
"""

from django.db import connections


def close_request_connections(**kwargs) -> None:
    for connection in connections.all(initialized_only=True):
        # A test wraps its requests in a transaction it rolls back itself.
        if not connection.in_atomic_block:
            connection.close()
