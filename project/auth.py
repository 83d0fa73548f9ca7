"""The authentication backend: Django's ``ModelBackend``, whose ``get_user`` (called by
``auth.get_user`` for every request and every socket handshake with a session) reads the
user with SQL built once (rooms.rows) instead of by the ORM at each call. That ORM query
was about a sixth of a socket handshake's server CPU (BENCHMARKS.md, connections).
Everything else, including login and its password check, is ModelBackend's.

Sessions name the backend that logged them in: those made under Django's own path
(``django.contrib.auth.backends.ModelBackend``) before this one took its place in
``AUTHENTICATION_BACKENDS`` no longer authenticate, and their users log in again.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import backends, get_user_model

from rooms import rows


@cache
def _users() -> rows.ByPk:
    return rows.ByPk(get_user_model())


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id):
        user = next(iter(_users().get([user_id]).values()), None)
        return user if user is not None and self.user_can_authenticate(user) else None
