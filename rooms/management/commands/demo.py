"""``manage.py demo [--json] [--consumers N] [--sessions]`` (PROTOCOL.md, "Running").

Re-creating the demo deletes the previous demo users, so their sessions stop working.
10,000 consumers take seconds: one password hash shared by all demo users, bulk inserts,
sessions written directly."""

import json
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _

from rooms import services
from rooms.models import Mediation, Membership, MemberStatus, Phase, Role

DEMO_PREFIX = "demo-"
DEMO_TITLE = "Frais d'abonnement cachés (démo)"
SESSION_BACKEND = "project.auth.ModelBackend"


class Command(BaseCommand):
    help = "Creates (or re-creates) the demo mediation and its users."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
        parser.add_argument("--consumers", type=int, default=5)
        parser.add_argument("--sessions", action="store_true", help="give each user a logged-in session cookie")

    def handle(self, *args, consumers, sessions, **options):
        if not 0 <= consumers <= 500_000:
            raise CommandError("--consumers must be between 0 and 500000")
        password = secrets.token_urlsafe(9)
        with transaction.atomic():
            result = self.create(consumers=consumers, password=password, sessions=sessions)
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(_("Demo mediation ready: %(title)s") % {"title": DEMO_TITLE})
            self.stdout.write(_("Open http://127.0.0.1:8000/ and log in with one of these accounts:"))
            for user in result["users"][:8]:
                self.stdout.write(f"  {user['role']:<9} {user['username']:<24} {user['password']}")
            if len(result["users"]) > 8:
                self.stdout.write(_("  … and %(n)d more consumers with the same password.") % {"n": len(result["users"]) - 8})

    def create(self, *, consumers: int, password: str, sessions: bool) -> dict:
        User = get_user_model()
        User.objects.filter(username__startswith=DEMO_PREFIX).delete()
        Mediation.objects.filter(title=DEMO_TITLE).delete()
        now = timezone.now()
        mediation = services.mediation_create(
            title=DEMO_TITLE,
            company="Abonnix SA",
            description="Des frais mensuels ont été prélevés sans accord explicite.",
            objective="Le remboursement des frais prélevés et la fin des prélèvements.",
            phase=Phase.DIALOGUE,
            closes_at=now + timedelta(days=7),
            registration_closes_at=now + timedelta(days=6),
        )
        hashed = make_password(password)
        people = [("mediator", Role.MEDIATOR, "Claire Médiatrice"), ("company", Role.COMPANY, "Abonnix (service client)")]
        people += [(f"consumer-{i:05d}", Role.CONSUMER, f"Consommateur {i}") for i in range(1, consumers + 1)]
        users = User.objects.bulk_create(
            [
                User(username=f"{DEMO_PREFIX}{name}", password=hashed, first_name=display, date_joined=now)
                for name, _role, display in people
            ],
            batch_size=2000,
        )
        if any(u.pk is None for u in users):  # backends that don't return ids from bulk inserts
            by_name = dict(User.objects.filter(username__startswith=DEMO_PREFIX).values_list("username", "pk"))
            for u in users:
                u.pk = by_name[u.username]
        Membership.objects.bulk_create(
            [
                Membership(user_id=u.pk, mediation=mediation, role=role, status=MemberStatus.ADMITTED, joined_at=now)
                for u, (_name, role, _display) in zip(users, people, strict=True)
            ],
            batch_size=2000,
        )
        rows = [{"username": u.username, "password": password, "role": role} for u, (_n, role, _d) in zip(users, people, strict=True)]
        if sessions:
            expire = now + timedelta(seconds=settings.SESSION_COOKIE_AGE)
            store = SessionStore()
            records = []
            for user, row in zip(users, rows, strict=True):
                key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
                data = {"_auth_user_id": str(user.pk), "_auth_user_backend": SESSION_BACKEND, "_auth_user_hash": user.get_session_auth_hash()}
                records.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
                row["session"] = key
            Session.objects.bulk_create(records, batch_size=2000)
        return {"mediation_id": str(mediation.pk), "room_id": str(services.plenary_room(mediation).pk), "users": rows}
