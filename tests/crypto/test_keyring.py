import base64

import pytest

from crypto import keyring
from crypto.aead import new_data_key
from crypto.errors import KeyRingError, KeyUnavailable, TamperedError

from .rings import ring

KEY = base64.b64encode(b"\x22" * 32).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("mk-1", "not 'key_id:base64key'"),
        (f"mk-1:{KEY},", "not 'key_id:base64key'"),
        ("mk-1:not*base64!", "not valid base64"),
        (f"mk-1:{base64.b64encode(b'x' * 16).decode()}", "16 bytes, expected 32"),
        (f"mk-1:{KEY},mk-1:{KEY}", "appears twice"),
        (f"bad id:{KEY}", "invalid key id"),
        (f"{'k' * 33}:{KEY}", "invalid key id"),
        (f":{KEY}", "invalid key id"),
    ],
)
def test_malformed_rings_are_refused_with_a_clear_message(text, message):
    with pytest.raises(KeyRingError, match="PALABRE_MASTER_KEYS") as raised:
        keyring.parse_master_keys(text)
    assert message in str(raised.value)
    assert KEY not in str(raised.value)


def test_parse_keeps_order_newest_first_and_tolerates_spaces():
    text = f" mk-new:{KEY} , mk_old:{base64.b64encode(b'3' * 32).decode()}\n"
    assert keyring.parse_master_keys(text) == [("mk-new", b"\x22" * 32), ("mk_old", b"3" * 32)]


def test_generated_ring_parses_and_is_fresh():
    text = keyring.generate_master_keys()
    [(key_id, key)] = keyring.parse_master_keys(text)
    assert key_id.startswith("mk-") and len(key) == 32
    assert keyring.generate_master_keys() != text


def test_wrap_unwrap_round_trip(master_keys):
    data_key = new_data_key()
    key_id, wrapped = keyring.wrap_data_key(data_key)
    assert key_id == "mk-old" == keyring.newest_master_key_id()
    assert data_key not in wrapped
    assert keyring.unwrap_data_key(key_id, wrapped) == data_key


def test_rotation_keeps_old_keys_readable_and_wraps_with_the_new_one(master_keys):
    data_key = new_data_key()
    old_id, old_wrapped = keyring.wrap_data_key(data_key)

    master_keys.PALABRE_MASTER_KEYS = (
        ring(("mk-new", b"\x33" * 32)) + "," + master_keys.PALABRE_MASTER_KEYS
    )

    assert keyring.newest_master_key_id() == "mk-new"
    assert keyring.unwrap_data_key(old_id, old_wrapped) == data_key
    new_id, new_wrapped = keyring.wrap_data_key(data_key)
    assert new_id == "mk-new"
    assert keyring.unwrap_data_key(new_id, new_wrapped) == data_key
    assert keyring.rewrap_data_key(old_id, old_wrapped)[0] == "mk-new"


def test_a_retired_master_key_is_unavailable(master_keys):
    key_id, wrapped = keyring.wrap_data_key(new_data_key())
    master_keys.PALABRE_MASTER_KEYS = ring(("mk-new", b"\x33" * 32))
    with pytest.raises(KeyUnavailable, match="mk-old"):
        keyring.unwrap_data_key(key_id, wrapped)


def test_an_unknown_key_id_is_unavailable(master_keys):
    with pytest.raises(KeyUnavailable, match="nope"):
        keyring.unwrap_data_key("nope", b"\x00" * 40)


@pytest.mark.parametrize("change", ["flip", "truncate", "empty"])
def test_a_tampered_wrapped_key_is_refused(master_keys, change):
    key_id, wrapped = keyring.wrap_data_key(new_data_key())
    tampered = {
        "flip": bytes([wrapped[0] ^ 1]) + wrapped[1:],
        "truncate": wrapped[:-8],
        "empty": b"",
    }[change]
    with pytest.raises(TamperedError):
        keyring.unwrap_data_key(key_id, tampered)


def test_a_key_wrapped_under_another_master_key_is_refused(master_keys):
    _, wrapped = keyring.wrap_data_key(new_data_key())
    master_keys.PALABRE_MASTER_KEYS = ring(("mk-old", b"\x44" * 32))
    with pytest.raises(TamperedError):
        keyring.unwrap_data_key("mk-old", wrapped)


def test_a_missing_setting_is_a_key_ring_error(settings):
    settings.PALABRE_MASTER_KEYS = ""
    with pytest.raises(KeyRingError, match="PALABRE_MASTER_KEYS"):
        keyring.newest_master_key_id()
