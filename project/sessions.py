"""The session engine (``SESSION_ENGINE``): Django's database sessions, the same table,
format and rules, with the one read every request and every socket handshake makes
built once (rooms.rows) instead of by the ORM at each call. That ORM query was about a
fifth of a socket handshake's server CPU (BENCHMARKS.md, connections). The handshakes
of a reconnect storm read their sessions together (``SessionStore.load_many``).
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
    @classmethod
    def load_many(cls, session_keys: list[str]) -> list[SessionStore]:
        """A store for each key, loaded as ``load`` would load it, by one query for all."""
        found = {s.pk: s for s in _sessions().where("pk", sorted(set(filter(None, session_keys))))}
        now = timezone.now()
        stores = []
        for key in session_keys:
            store, row = cls(key), found.get(key)
            if row is not None and row.expire_date > now:
                store._session_cache = store.decode(row.session_data)
            else:
                store._session_key, store._session_cache = None, {}
            stores.append(store)
        return stores

    def _get_session_from_db(self):
        """``Session.objects.get(session_key=key, expire_date__gt=now)``, or None (and no
        key) when there is no such live session, as Django's."""
        found = _sessions().where("pk", [self.session_key]) if self.session_key else []
        if found and found[0].expire_date > timezone.now():
            return found[0]
        self._session_key = None
        return None
