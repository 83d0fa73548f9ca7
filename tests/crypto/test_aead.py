import pytest

from crypto.aead import associated_data, decrypt, encrypt, new_data_key
from crypto.errors import TamperedError

BODY = (
    "Bonjour à toutes et à tous. Nous avons bien reçu la proposition de la société : "
    "un remboursement de 84,50 € par adhérent, au titre des frais d'abonnement prélevés "
    "sans accord entre 2021 et 2023. Prenez le temps de la lire ; le vote sera ouvert "
    "demain à 10 h et se clôturera vendredi à minuit. « Égalité » n'est pas négociable. 🙂"
)
AAD = associated_data(room_id="room-1", seq=42, event_type="chat.message")


@pytest.fixture
def key():
    return new_data_key()


def test_round_trip_keeps_unicode_exactly(key):
    assert decrypt(key, encrypt(key, BODY, aad=AAD), aad=AAD) == BODY


def test_empty_body_round_trips(key):
    assert decrypt(key, encrypt(key, "", aad=AAD), aad=AAD) == ""


def test_same_message_encrypts_differently_each_time(key):
    assert encrypt(key, BODY, aad=AAD) != encrypt(key, BODY, aad=AAD)


def test_data_keys_are_random_32_bytes():
    assert len(new_data_key()) == 32
    assert new_data_key() != new_data_key()


def _flip(blob: bytes, index: int) -> bytes:
    changed = bytearray(blob)
    changed[index] ^= 0x01
    return bytes(changed)


@pytest.mark.parametrize(
    "index",
    [0, 1, 12, 13, 50, -16, -1],
    ids=[
        "version",
        "nonce-first",
        "nonce-last",
        "ciphertext-first",
        "ciphertext-mid",
        "tag-first",
        "tag-last",
    ],
)
def test_a_flipped_bit_anywhere_is_refused(key, index):
    blob = encrypt(key, BODY, aad=AAD)
    with pytest.raises(TamperedError):
        decrypt(key, _flip(blob, index), aad=AAD)


@pytest.mark.parametrize(
    "other",
    [
        {"room_id": "room-2", "seq": 42, "event_type": "chat.message"},
        {"room_id": "room-1", "seq": 43, "event_type": "chat.message"},
        {"room_id": "room-1", "seq": 42, "event_type": "offer.submitted"},
    ],
    ids=["other-room", "other-seq", "other-event-type"],
)
def test_a_ciphertext_moved_elsewhere_in_the_log_is_refused(key, other):
    blob = encrypt(key, BODY, aad=AAD)
    with pytest.raises(TamperedError):
        decrypt(key, blob, aad=associated_data(**other))


def test_associated_data_has_no_ambiguous_separator():
    assert associated_data(room_id="a,1", seq=2, event_type="x") != associated_data(
        room_id="a", seq=1, event_type="2,x"
    )
    assert associated_data(room_id="r", seq=1, event_type="e") == associated_data(
        room_id="r", seq=1, event_type="e"
    )


def test_seq_must_be_an_integer():
    with pytest.raises(TypeError):
        associated_data(room_id="r", seq="1", event_type="e")


@pytest.mark.parametrize("length", [0, 1, 13, 28, -1])
def test_a_truncated_blob_is_refused(key, length):
    blob = encrypt(key, BODY, aad=AAD)
    with pytest.raises(TamperedError):
        decrypt(key, blob[:length], aad=AAD)


def test_the_wrong_data_key_is_refused(key):
    blob = encrypt(key, BODY, aad=AAD)
    with pytest.raises(TamperedError):
        decrypt(new_data_key(), blob, aad=AAD)
