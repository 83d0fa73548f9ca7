"""Issue 5.1: the database never holds a plaintext body. Read with raw SQL, not the ORM,
so that nothing decrypts on the way."""

import base64
import json
import pathlib
import secrets

import pytest
from django.db import connection

from rooms.models import Event

from .conftest import as_bytes, events_by_seq, post, raw_rows


def plaintext_forms(body: str) -> list[bytes]:
    """Every way a careless layer could have stored the body."""
    utf8 = body.encode("utf-8")
    return [
        utf8,
        json.dumps(body).encode("ascii"),  # JSON with \\u escapes
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
        body.encode("utf-16-le"),
        base64.b64encode(utf8),
        utf8.hex().encode("ascii"),
    ]


def find(haystack: bytes, needles: list[bytes]) -> list[bytes]:
    return [needle for needle in needles if needle in haystack]


@pytest.mark.django_db
def test_no_column_of_the_events_table_holds_a_posted_body(plenary, consumer, mediator):
    canary = secrets.token_hex(8)
    bodies = [
        f"Ma banque m’a prélevé 84,50 € sans accord — {canary}",
        f"{canary}",
        f"Réponse confidentielle : je refuserai l’offre ({canary[::-1]})",
    ]
    for body in bodies:
        post(plenary, consumer, body)
    post(plenary, mediator, bodies[0])

    rows = raw_rows(Event)
    assert len(rows) == 4 and {row["type"] for row in rows} == {"chat.message"}
    needles = [form for body in bodies for form in plaintext_forms(body)]
    for row in rows:
        for column, value in row.items():
            stored = as_bytes(value)
            if stored is not None:
                assert find(stored, needles) == [], f"plaintext in column {column!r} of {row['seq']}"
        # What is stored instead: an AES-GCM blob (version, nonce, ciphertext, tag), and
        # the names of the fields it carries.
        assert as_bytes(row["ciphertext"])[0] == 1 and len(as_bytes(row["ciphertext"])) > 29
        assert "body" in as_bytes(row["secret_fields"]).decode()
    # The plaintext is still there for members: the test would prove nothing otherwise.
    readable = events_by_seq(plenary, consumer)
    assert [readable[seq]["body"] for seq in (1, 2, 3, 4)] == [*bodies, bodies[0]]


@pytest.mark.django_db
def test_no_table_of_the_database_holds_a_posted_body_or_an_offers_text(plenary, consumer, company):
    """Every table, not only the log: offers (ballots/) keep their title and terms only in
    the encrypted ``offer.submitted`` event."""
    from ballots import services as ballots

    body = f"Preuve de prélèvement : IBAN FR76 {secrets.token_hex(6)}"
    title = f"Offre confidentielle {secrets.token_hex(6)}"
    terms = f"Remboursement de 84,50 € sous 30 jours, clause {secrets.token_hex(6)}"
    post(plenary, consumer, body)
    actor = ballots.check_offer_submit(member_id=company.pk, room_id=plenary.pk)
    ballots.offer_submit(member=actor.member, room_id=plenary.pk, title=title, terms=terms, amount_cents=8450)
    offer = events_by_seq(plenary, consumer)[2]["offer"]
    assert (offer["title"], offer["terms"]) == (title, terms)  # readable by members
    needles = [form for text in (body, title, terms) for form in plaintext_forms(text)]
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    stored = as_bytes(value)
                    assert stored is None or find(stored, needles) == [], f"plaintext in {table}"


@pytest.mark.django_db(transaction=True)
def test_the_sqlite_file_itself_never_sees_a_posted_body(plenary, consumer):
    """Committed, checkpointed and on disk: not even a free page or the WAL holds it."""
    if connection.vendor != "sqlite":
        pytest.skip("the embedded database file is SQLite's")
    body = f"Note manuscrite du conseiller — {secrets.token_hex(8)}"
    post(plenary, consumer, body)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(FULL)")
    path = pathlib.Path(connection.settings_dict["NAME"])
    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            assert find(file.read_bytes(), plaintext_forms(body)) == [], file
