"""Many small rooms for the benchmark: ``python -m bench.fixtures --rooms 100 --members 10``
creates that many mediations in the dialogue phase, each with its plenary room and that
many admitted consumers holding a logged-in session, and prints
``{"rooms": [{"room_id", "sessions": [...]}]}``. Same shortcuts as ``manage.py demo``
(one password hash, bulk inserts, sessions written directly); run with the server's
environment so that it writes to the server's database."""

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

from rooms import services  # noqa: E402
from rooms.models import Mediation, Membership, MemberStatus, Phase, Role  # noqa: E402

PREFIX = "bench-r"
TITLE = "Banc d'essai : petites salles"


def create(rooms: int, members: int) -> dict:
    User = get_user_model()
    User.objects.filter(username__startswith=PREFIX).delete()
    Mediation.objects.filter(title__startswith=TITLE).delete()
    now = timezone.now()
    hashed = make_password(get_random_string(16))
    store = SessionStore()
    expire = now + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    out = []
    for j in range(rooms):
        mediation = services.mediation_create(
            title=f"{TITLE} {j}",
            company="Abonnix SA",
            phase=Phase.DIALOGUE,
            closes_at=now + timedelta(days=1),
        )
        users = User.objects.bulk_create(
            [User(username=f"{PREFIX}{j}-{i}", password=hashed, first_name=f"R{j} C{i}") for i in range(members)]
        )
        if any(u.pk is None for u in users):
            by_name = dict(User.objects.filter(username__startswith=f"{PREFIX}{j}-").values_list("username", "pk"))
            for u in users:
                u.pk = by_name[u.username]
        Membership.objects.bulk_create(
            [
                Membership(user_id=u.pk, mediation=mediation, role=Role.CONSUMER, status=MemberStatus.ADMITTED, joined_at=now)
                for u in users
            ]
        )
        sessions = []
        records = []
        for u in users:
            key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
            data = {
                "_auth_user_id": str(u.pk),
                "_auth_user_backend": "project.auth.ModelBackend",
                "_auth_user_hash": u.get_session_auth_hash(),
            }
            records.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
            sessions.append(key)
        Session.objects.bulk_create(records)
        out.append({"room_id": str(services.plenary_room(mediation).pk), "sessions": sessions})
    return {"rooms": out}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--members", type=int, default=10)
    args = parser.parse_args()
    with transaction.atomic():
        result = create(args.rooms, args.members)
    print(json.dumps(result))
