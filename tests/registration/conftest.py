"""Registration fixtures: a mediation that asks for answers and documents, the files a
consumer sends, and clients logged in as the people of the mediation."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from rooms.models import Phase

FIELDS = [
    {"name": "contract_number", "label": {"fr": "Numéro de contrat", "en": "Contract number"}, "type": "text", "required": True, "max_length": 40},
    {"name": "amount_cents", "label": {"fr": "Montant en jeu", "en": "Amount at stake"}, "type": "amount", "required": True},
    {"name": "story", "label": "Votre situation", "type": "textarea", "required": False},
]
ANSWERS = {"contract_number": "AB-12345", "amount_cents": 12990, "story": "Prélevé 9,99 € par mois depuis 2021."}

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


def upload(name: str, content: bytes) -> io.BytesIO:
    f = io.BytesIO(content)
    f.name = name
    return f


def logged_in(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def asking(make_mediation):
    """A mediation in its registration phase that asks for answers and one document,
    where the mediator admits each registration."""
    return make_mediation(
        title="Assurance emprunteur",
        phase=Phase.REGISTRATION,
        auto_admit=False,
        registration_fields=FIELDS,
        registration_documents_min=1,
        registration_closes_at=timezone.now() + timedelta(days=1),
        closes_at=timezone.now() + timedelta(days=10),
    )


@pytest.fixture
def make_user(db):
    counter = iter(range(1, 10_000))

    def make(name=None, email=None):
        n = next(counter)
        username = name or f"claimant-{n}"
        return get_user_model().objects.create_user(
            username=username, password="pw", first_name=f"Claimant {n}", email=email or f"{username}@example.org"
        )

    return make
