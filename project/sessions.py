"""The session engine (``SESSION_ENGINE``): Django's database sessions, the same table,
format and rules, with the one read every request and every socket handshake makes
built once (rooms.rows) instead of by the ORM at each call. That ORM query was about a
fifth of a socket handshake's server CPU (BENCHMARKS.md, connections).
"""

from __future__ import annotations

from functools import cache

from django.contrib.sessions.backends import db
from django.utils import timezone

from rooms import rows


@cache
def _sessions() -> rows.ByPk:
    # Built at first use: the engine's module is imported before the app registry is ready.
    return rows.ByPk(db.SessionStore.get_model_class())


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        """``Session.objects.get(session_key=key, expire_date__gt=now)``, or None (and no
        key) when there is no such live session, as Django's."""
        found = _sessions().where("pk", [self.session_key]) if self.session_key else []
        if found and found[0].expire_date > timezone.now():
            return found[0]
        self._session_key = None
        return None
