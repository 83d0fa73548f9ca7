"""The authentication backend: Django's ``ModelBackend``, whose ``get_user`` (called by
``auth.get_user`` for every request and every socket handshake with a session) reads the
user with SQL built once (rooms.rows) instead of by the ORM at each call. That ORM query
was about a sixth of a socket handshake's server CPU (BENCHMARKS.md, connections).
Everything else, including login and its password check, is ModelBackend's. The
handshakes of a reconnect storm read their users together (``users_read_together``),
and each is still checked by Django's own ``auth.get_user``.

Sessions name the backend that logged them in: those made under Django's own path
(``django.contrib.auth.backends.ModelBackend``) before this one took its place in
``AUTHENTICATION_BACKENDS`` no longer authenticate, and their users log in again.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

from django.contrib.auth import backends, get_user_model

from rooms import rows


@cache
def _users() -> rows.ByPk:
    return rows.ByPk(get_user_model())


# The rows read together for the calls of ``get_user`` inside ``users_read_together``:
# every id asked for, None for one that names no user.
_read_together: ContextVar[dict | None] = ContextVar("users_read_together", default=None)


@contextmanager
def users_read_together(user_ids, read: dict | None = None):
    """Within it, ``get_user`` of any of ``user_ids`` takes its row from ``read`` (rows
    the caller already has, by id: every column, as this module reads them) or else from
    one query made here for the others; of any other id, from a query of its own, as
    outside."""
    ids = set(user_ids)
    found = dict(read or {})
    found.update(_users().get(ids - found.keys()))  # no query when none is missing
    token = _read_together.set({pk: found.get(pk) for pk in ids})
    try:
        yield
    finally:
        _read_together.reset(token)


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id):
        read = _read_together.get()
        if read is not None and user_id in read:
            user = read[user_id]
        else:
            user = next(iter(_users().get([user_id]).values()), None)
        return user if user is not None and self.user_can_authenticate(user) else None
