"""Issue 5.3: crypto-shredding, by ``manage.py shred`` and by the worker's retention pass.
The events stay; their free text is gone for good, and the API and the socket say so."""

import io
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from crypto import keyring
from rooms import services
from rooms.models import Event, Mediation, Phase, Role, Room
from tests.conftest import connect

from .conftest import as_bytes, events, events_by_seq, post, raw_room, raw_rows


def shred(*args) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command("shred", *map(str, args), stdout=out)
    return out.getvalue()


def close(mediation, *, days_ago: float = 0) -> Mediation:
    services.mediation_close(mediation=mediation, reason="deadline")
    Mediation.objects.filter(pk=mediation.pk).update(closed_at=timezone.now() - timedelta(days=days_ago))
    mediation.refresh_from_db()
    return mediation


def assert_shredded_in_the_raw_table(mediation) -> None:
    rooms = raw_rows(Room, "WHERE mediation_id = %s", [mediation.pk])
    assert rooms, "the mediation has rooms"
    for row in rooms:
        assert row["wrapped_key"] is None and row["master_key_id"] == ""
    [mediation_row] = raw_rows(Mediation, "WHERE id = %s", [mediation.pk])
    assert mediation_row["phase"] == Phase.SHREDDED and mediation_row["shredded_at"] is not None


@pytest.mark.django_db
def test_shred_destroys_the_keys_and_the_api_says_shredded(mediation, plenary, mediator, consumer):
    room, _, _ = services.caucus_open(member_id=mediator.pk, room_id=plenary.pk, target_id=consumer.pk)
    post(plenary, consumer, "Je demande le remboursement intégral.")
    post(room, consumer, "En privé : j’accepterais 60 %.")
    services.message_redact(member_id=mediator.pk, room_id=plenary.pk, seq=1)
    post(plenary, mediator, "Merci à tous.")
    close(mediation)
    ciphertexts = {(row["room_id"], row["seq"]): row["ciphertext"] for row in raw_rows(Event)}

    out = shred(mediation.pk)

    assert f"Mediation {mediation.pk} shredded: the keys of its 2 rooms are destroyed." in out
    assert_shredded_in_the_raw_table(mediation)
    # The events stay, ciphertext and all: without the key it is noise.
    assert {(row["room_id"], row["seq"]): row["ciphertext"] for row in raw_rows(Event)} == ciphertexts
    plenary_events = events_by_seq(plenary, consumer)
    assert plenary_events[1]["redacted"] is True and plenary_events[1]["body"] is None
    message = plenary_events[3]
    assert message["type"] == "chat.message" and message["body"] is None and message["shredded"] is True
    assert message["author"]["member_id"] == str(mediator.pk)
    assert plenary_events[4] == {"type": "mediation.phase", "seq": 4, "at": plenary_events[4]["at"], "phase": "closed"}
    assert plenary_events[5] == {"type": "room.closed", "seq": 5, "at": plenary_events[5]["at"], "reason": "deadline"}
    caucus_event = events_by_seq(room, consumer)[1]
    assert caucus_event["body"] is None and caucus_event["shredded"] is True
    assert "unreadable" not in message


@pytest.mark.django_db
def test_a_shredded_key_is_gone_for_every_master_key(settings, mediation, plenary, consumer):
    """Nothing left to unwrap: no master key, old or new, brings the text back."""
    post(plenary, consumer, "Texte à détruire")
    before = as_bytes(raw_room(plenary.pk)["wrapped_key"])
    assert keyring.unwrap_data_key("mk-old", before)
    close(mediation)
    shred(mediation.pk)
    row = raw_room(plenary.pk)
    assert row["wrapped_key"] is None
    plenary.refresh_from_db()
    assert services.log.room_data_key(plenary) is None
    assert services.events_page(room=plenary, after_seq=0, limit=10)[0][0]["shredded"] is True


@pytest.mark.django_db
def test_shred_refuses_a_mediation_that_is_not_closed(mediation, plenary, consumer):
    post(plenary, consumer, "Toujours en cours")
    with pytest.raises(CommandError) as refused:
        shred(mediation.pk)
    message = str(refused.value)
    assert "This mediation is not closed (phase: dialogue)" in message
    assert "Nothing was shredded; use --force to shred it anyway." in message
    assert raw_room(plenary.pk)["wrapped_key"] is not None
    assert events_by_seq(plenary, consumer)[1]["body"] == "Toujours en cours"


@pytest.mark.django_db
def test_shred_force_closes_a_live_mediation_first(mediation, plenary, consumer):
    post(plenary, consumer, "Toujours en cours")
    out = shred(mediation.pk, "--force")
    assert "shredded" in out
    assert_shredded_in_the_raw_table(mediation)
    page = events_by_seq(plenary, consumer)
    assert page[1]["shredded"] is True and page[1]["body"] is None
    assert page[2]["type"] == "mediation.phase" and page[2]["phase"] == "closed"
    assert page[3]["type"] == "room.closed" and page[3]["reason"] == "shredded"
    assert Mediation.objects.get(pk=mediation.pk).closed_at is not None


@pytest.mark.django_db
def test_shred_twice_and_unknown_mediations(mediation):
    close(mediation)
    shred(mediation.pk)
    assert f"Mediation {mediation.pk} was already shredded: nothing to do." in shred(mediation.pk)
    for missing in (mediation.pk + 1000, "abc"):
        with pytest.raises(CommandError, match=f"No mediation with id {missing}."):
            shred(missing)


@pytest.mark.django_db
def test_the_worker_shreds_once_retention_ends_and_not_a_minute_before(make_mediation, make_member):
    due = make_mediation(title="Échue", retention_days=30)
    kept = make_mediation(title="Gardée", retention_days=30)
    for mediation in (due, kept):
        post(services.plenary_room(mediation), make_member(mediation, Role.CONSUMER), "Bonjour")
    close(due, days_ago=30 + 1 / (24 * 3600))
    close(kept, days_ago=30 - 1 / (24 * 60))
    out = io.StringIO()

    call_command("run_deadlines", "--once", stdout=out)

    assert "mediations_shred_due=1" in out.getvalue()
    assert_shredded_in_the_raw_table(due)
    assert raw_room(services.plenary_room(kept).pk)["wrapped_key"] is not None
    assert Mediation.objects.get(pk=kept.pk).phase == Phase.CLOSED


@pytest.mark.django_db(transaction=True)
async def test_sync_over_the_socket_says_shredded(mediation, plenary, consumer, mediator):
    await sync_to_async(post)(plenary, consumer, "Message à effacer")
    await sync_to_async(close)(mediation)
    await sync_to_async(shred)(mediation.pk)

    sock = await connect(plenary, consumer)
    assert sock.welcome["room"]["phase"] == "shredded"
    await sock.send({"type": "sync", "after_seq": 0, "ref": "s1"})
    first = await sock.recv()
    assert first["type"] == "chat.message" and first["seq"] == 1
    assert first["body"] is None and first["shredded"] is True
    assert (await sock.recv())["type"] == "mediation.phase"
    assert (await sock.recv())["type"] == "room.closed"
    assert await sock.recv() == {"type": "synced", "ref": "s1", "last_seq": 3}
    await sock.send({"type": "chat.send", "body": "Encore là ?", "ref": "c1"})
    refused = await sock.recv()
    assert (refused["type"], refused["code"], refused["ref"]) == ("error", "room_closed", "c1")
    await sock.close()


@pytest.mark.django_db
def test_events_of_a_shredded_room_are_still_paged_and_members_only(mediation, plenary, consumer, outsider):
    for n in range(5):
        post(plenary, consumer, f"message {n}")
    close(mediation)
    shred(mediation.pk)
    page = events(plenary, consumer, after_seq=2, limit=2).json()
    assert [e["seq"] for e in page["events"]] == [3, 4] and page["last_seq"] == 7
    assert all(e["shredded"] is True and e["body"] is None for e in page["events"])
    from django.test import Client

    client = Client()
    client.force_login(outsider)
    assert client.get(f"/api/v1/rooms/{plenary.pk}/events").status_code == 403


@pytest.mark.parametrize("command", ["shred", "rotate_master_key"])
def test_the_commands_explain_themselves(command):
    from django.core.management import load_command_class

    with translation.override("en"):
        text = load_command_class("rooms", command).create_parser("manage.py", command).format_help()
    assert "mediation" in text or "master key" in text
