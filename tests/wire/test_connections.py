"""A daphne does not keep a database connection per HTTP request it served
(project/connections.py): each request runs on a thread that ends with it, and its
connection must go with it, or a burst of requests runs the database out of connections."""

from __future__ import annotations

import os

import pytest

from tests.wire.conftest import http, session_headers

pytestmark = pytest.mark.wire


def database_connections(backend, daphne) -> int:
    if backend.postgres:
        return backend.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )[0][0]
    fds = f"/proc/{daphne.pid}/fd"
    return sum(os.readlink(f"{fds}/{fd}").endswith("palabre.sqlite3") for fd in os.listdir(fds) if os.path.islink(f"{fds}/{fd}"))


def test_two_hundred_requests_leave_at_most_a_couple_of_connections(wire_backend, daphnes):
    demo = wire_backend.demo(consumers=2)
    mediator = next(u for u in demo["users"] if u["role"] == "mediator")
    server = daphnes()
    for _ in range(200):
        status, _body = http("GET", f"{server.base}/api/v1/mediations/{demo['mediation_id']}", headers=session_headers(mediator["session"]))[:2]
        assert status == 200
    # The sockets' database thread may keep one (CONN_MAX_AGE); requests keep none.
    assert database_connections(wire_backend, server) <= 2
