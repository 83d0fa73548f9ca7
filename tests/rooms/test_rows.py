"""rooms.rows: the hot path's reads and insert, with SQL built once, give exactly what the
ORM gives (on SQLite and on PostgreSQL: the suite runs on both)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.utils import timezone

from rooms import rows, services
from rooms.models import Event, Membership, Room

pytestmark = pytest.mark.django_db


def fields_of(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_members_with_their_users_are_the_orms(mediation, mediator, consumers):
    a, b, c = consumers(3)
    until = timezone.now() + timedelta(hours=2)
    Membership.objects.filter(pk=b.pk).update(muted=True, muted_until=until, notices_enabled=False, language="en")
    Membership.objects.filter(pk=c.pk).update(muted=True)
    pks = [mediator.pk, a.pk, b.pk, c.pk]

    read = rows.ByPk(Membership, "user").get([*map(str, pks), a.pk, 10**9])

    orm = Membership.objects.select_related("user").in_bulk(pks)
    assert sorted(read) == sorted(pks)
    for pk, member in orm.items():
        assert fields_of(read[pk]) == fields_of(member)
        assert fields_of(read[pk].user) == fields_of(member.user)
    assert read[b.pk].muted_until == until and read[b.pk].muted_until.tzinfo is not None
    assert read[b.pk].is_muted() and read[c.pk].is_muted() and not read[a.pk].is_muted()


def test_a_read_member_needs_no_further_query(consumer, django_assert_num_queries):
    members = rows.ByPk(Membership, "user").get([consumer.pk])
    with django_assert_num_queries(0):
        assert members[consumer.pk].public()["display_name"] == consumer.display_name
        assert members[consumer.pk]._state.db == "default" and not members[consumer.pk]._state.adding


def test_rooms_with_their_mediations_are_the_orms(mediation, plenary, mediator, consumer):
    caucus, _mediator, _member = services.caucus_open(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    Room.objects.filter(pk=plenary.pk).update(moderated=True, last_seq=7)

    read = rows.ByPk(Room, "mediation").get([plenary.pk, caucus.pk])

    orm = Room.objects.select_related("mediation").in_bulk([plenary.pk, caucus.pk])
    for pk, room in orm.items():
        assert fields_of(read[pk]) == fields_of(room)
        assert fields_of(read[pk].mediation) == fields_of(room.mediation)
    assert read[caucus.pk].caucus_member_id == consumer.pk
    assert isinstance(read[plenary.pk].wrapped_key, bytes | memoryview)
    assert read[plenary.pk].moderated is True and read[plenary.pk].last_seq == 7


def test_no_ids_read_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert rows.ByPk(Room, "mediation").get([]) == {}
        assert rows.ByPk(Room, "mediation").get([2**63, -(2**64)]) == {}


def test_rows_by_another_column_are_the_orms(mediation, make_mediation, make_member, consumer):
    elsewhere = make_member(make_mediation(), status="pending")
    Membership.objects.filter(pk=elsewhere.pk).update(user=consumer.user)

    read = rows.ByPk(Membership, "user").where("user_id", [consumer.user_id])

    orm = Membership.objects.select_related("user").filter(user=consumer.user)
    assert sorted(fields_of(m).items() for m in read) == sorted(fields_of(m).items() for m in orm)
    assert len(read) == 2 and all(m.user.pk == consumer.user_id for m in read)


def test_insert_sets_each_primary_key_and_stores_every_field(plenary, consumer):
    at = timezone.now()
    # More rows than one SQLite statement takes (999 parameters): several statements.
    events = [
        Event(
            room_id=plenary.pk,
            seq=1000 + i,
            type="chat.message",
            at=at,
            author_id=consumer.pk if i % 2 else None,
            data={"author": {"n": i}, "é": "ü"},
            ciphertext=bytes([i % 256]) * 3 if i % 3 else None,
            secret_fields=["body"] if i % 3 else [],
        )
        for i in range(250)
    ]

    rows.Insert(Event)(events)

    assert all(e.pk is not None and not e._state.adding for e in events)
    assert len({e.pk for e in events}) == len(events)
    stored = Event.objects.in_bulk([e.pk for e in events])
    for event in events:
        got = stored[event.pk]
        assert got.seq == event.seq and got.at == at and got.author_id == event.author_id
        assert got.data == event.data and got.secret_fields == event.secret_fields
        assert (bytes(got.ciphertext) if got.ciphertext is not None else None) == event.ciphertext


def test_insert_keeps_values_that_compare_equal_apart(plenary):
    """Equal values are prepared once per insert, but 1, True and 1.0 are not the same
    JSON, and two times of one instant in two zones are stored as that instant."""
    at = timezone.now()
    paris = at.astimezone(timezone.get_fixed_timezone(60))
    values = [1, True, 1.0, "1", 0, False, 0.0]
    events = [
        Event(room_id=plenary.pk, seq=2000 + i, type="x", at=paris if i % 2 else at, data=value)
        for i, value in enumerate(values)
    ]

    rows.Insert(Event)(events)

    stored = Event.objects.in_bulk([e.pk for e in events])
    got = [stored[e.pk].data for e in events]
    assert [(type(v), v) for v in got] == [(type(v), v) for v in values]
    assert all(stored[e.pk].at == at for e in events)


def test_only_named_fields_are_read_and_the_others_load_on_use(consumer, django_assert_num_queries):
    slim = rows.ByPk(Membership, "user", only=("role", "muted"), related_only=("username",))
    with django_assert_num_queries(1):
        member = slim.get([consumer.pk])[consumer.pk]
        assert (member.pk, member.user_id, member.role, member.muted) == (
            consumer.pk,
            consumer.user_id,
            consumer.role,
            consumer.muted,
        )
        assert member.user.username == consumer.user.username
    assert member.get_deferred_fields() == {f.attname for f in Membership._meta.concrete_fields} - {
        "id",
        "user_id",
        "role",
        "muted",
    }
    with django_assert_num_queries(1):
        assert member.joined_at == consumer.joined_at
    with pytest.raises(ValueError, match="no field nickname"):
        rows.ByPk(Membership, "user", only=("nickname",))


def test_a_read_row_is_a_saved_instance_like_the_orms(consumer):
    member = rows.ByPk(Membership, "user").get([consumer.pk])[consumer.pk]
    orm = Membership.objects.select_related("user").get(pk=consumer.pk)
    for obj, expected in ((member, orm), (member.user, orm.user)):
        assert (obj._state.adding, obj._state.db) == (expected._state.adding, expected._state.db) == (False, "default")
        assert obj == expected and hash(obj) == hash(expected)
    before = Membership.objects.count()
    member.muted = True
    member.save()  # an UPDATE of the row read, not an INSERT of a new one
    assert Membership.objects.count() == before
    assert Membership.objects.get(pk=consumer.pk).muted is True


def test_init_signals_still_see_every_read_row(consumer, mediator):
    from django.db.models.signals import post_init

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Membership)
    try:
        read = rows.ByPk(Membership, "user").get([consumer.pk, mediator.pk])
    finally:
        post_init.disconnect(receiver, sender=Membership)
    assert sorted(m.pk for m in seen) == sorted(read) and all(m.user_id for m in seen)


def test_statements_of_many_parameters_bind_each_value_in_its_place(make_mediation, plenary):
    """The hot statements go through ``rows.cursor`` in ``rows.marks``' placeholders
    (PostgreSQL's own $1, $2 … there): every value still lands in its own place."""
    others = [services.plenary_room(make_mediation()).pk for _ in range(3)]
    wanted = [plenary.pk, *others]
    asked = [*range(10**9, 10**9 + 120), *wanted]  # 124 parameters, past psycopg's 50
    assert sorted(rows.ByPk(Room, "mediation").get(asked)) == sorted(wanted)
    with rows.cursor(connection) as cursor:
        cursor.execute(f"SELECT {rows.marks(connection, 3, start=0)}", [1, "deux", None])
        assert cursor.fetchall() == [(1, "deux", None)]
    assert rows.marks(connection, 2, start=3) == ("$4, $5" if connection.vendor == "postgresql" else "%s, %s")


def test_a_refused_insert_raises_djangos_error_and_leaves_the_connection_usable(plenary):
    at = timezone.now()
    rows.Insert(Event)([Event(room_id=plenary.pk, seq=3000, type="x", at=at)])
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.Insert(Event)([Event(room_id=plenary.pk, seq=3001, type="x", at=at), Event(room_id=plenary.pk, seq=3000, type="x", at=at)])
    assert list(Event.objects.filter(room_id=plenary.pk, seq__gte=3000).values_list("seq", flat=True)) == [3000]
    assert sorted(rows.ByPk(Room, "mediation").get([plenary.pk])) == [plenary.pk]


@pytest.mark.postgres
def test_a_cursor_reads_times_in_the_zone_djangos_own_would():
    """Django gives a cursor a time zone loader of its own when the database's TIME_ZONE
    no longer is the one its connection opened with; ``rows.cursor`` reads times as that
    cursor does (whatever Django then makes of the session's UTC)."""
    db = connections[DEFAULT_DB_ALIAS]
    assert db.vendor == "postgresql"
    at = timezone.now()
    original = db.settings_dict["TIME_ZONE"]

    def read(tz):
        db.settings_dict["TIME_ZONE"] = tz
        for cached in ("timezone", "timezone_name"):
            db.__dict__.pop(cached, None)
        with db.cursor() as cursor:
            cursor.execute("SELECT %s::timestamptz", [at])
            (django_read,) = cursor.fetchone()
        with rows.cursor(db) as cursor:
            cursor.execute(f"SELECT {rows.marks(db, 1)}::timestamptz", [at])
            (ours,) = cursor.fetchone()
        return django_read, ours

    try:
        tokyo = read("Asia/Tokyo")
        utc = read(None)
    finally:
        read(original)
    assert tokyo[1] == tokyo[0] and tokyo[1].utcoffset() == tokyo[0].utcoffset() == timedelta(hours=9)
    assert utc[1] == utc[0] == at and utc[1].utcoffset() == timedelta(0)
