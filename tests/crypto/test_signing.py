import base64

import pytest

from crypto import signing
from crypto.errors import KeyRingError

from .rings import ring

DOCUMENT = {
    "version": 1,
    "ballot_id": "b-1",
    "outcome": "accepted",
    "accept": 8,
    "refuse": 2,
    "threshold": "0.75",
    "merkle_root": "00" * 32,
    "title": "Frais indûs — « été »",
}
# Ed25519 is deterministic: seed 00 01 .. 1f signing DOCUMENT always gives this.
EXPECTED_SIGNATURE = (
    "nI0L5UHq7nYwszelIj2ANPX2dCgp8tCZRrTyq+ddIN6Udlh53zpZi9pSN29HOnmEnqgDtJ8GEzNidWi6cZlEBQ=="
)
# RFC 8032's public key for that seed.
EXPECTED_PUBLIC_KEY = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="


def test_canonical_json_exact_bytes():
    doc = {"z": 1, "a": {"é": "ü", "b": [2, {"y": None, "x": True}]}, "m": "«»"}
    assert signing.canonical_json(doc) == (
        '{"a":{"b":[2,{"x":true,"y":null}],"é":"ü"},"m":"«»","z":1}'.encode()
    )


def test_canonical_hash_is_sha256_of_canonical_json():
    assert signing.canonical_hash({}) == (
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert signing.sha256_hex(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_fixed_signature_vector(sealing_keys):
    assert signing.sign(DOCUMENT) == (EXPECTED_SIGNATURE, "sk-test")
    assert signing.verify(DOCUMENT, EXPECTED_SIGNATURE, "sk-test")


def test_public_keys_shape(sealing_keys):
    assert signing.public_keys() == [
        {"key_id": "sk-test", "algorithm": "Ed25519", "public_key": EXPECTED_PUBLIC_KEY}
    ]


def test_sign_verify_with_a_generated_ring(settings):
    settings.PALABRE_SEALING_KEYS = signing.generate_sealing_keys()
    signature, key_id = signing.sign(DOCUMENT)
    assert key_id.startswith("sk-")
    assert len(base64.b64decode(signature, validate=True)) == 64
    assert signing.verify(DOCUMENT, signature, key_id)


@pytest.mark.parametrize(
    "change", [{"accept": 9}, {"outcome": "rejected"}, {"title": "Frais indus"}, {"extra": 1}]
)
def test_a_changed_field_does_not_verify(sealing_keys, change):
    assert not signing.verify(DOCUMENT | change, EXPECTED_SIGNATURE, "sk-test")


@pytest.mark.parametrize(
    ("signature", "key_id"),
    [
        (EXPECTED_SIGNATURE, "sk-other"),
        (EXPECTED_SIGNATURE, None),
        ("not base64 !!", "sk-test"),
        (EXPECTED_SIGNATURE[:-4], "sk-test"),
        ("", "sk-test"),
        (None, "sk-test"),
        (base64.b64encode(b"\x00" * 64).decode(), "sk-test"),
    ],
    ids=["unknown-key", "no-key", "garbage", "truncated", "empty", "none", "zeros"],
)
def test_bad_signatures_and_key_ids_verify_false(sealing_keys, signature, key_id):
    assert signing.verify(DOCUMENT, signature, key_id) is False


def test_rotation_signs_with_the_newest_and_still_verifies_and_publishes_old_seals(settings):
    settings.PALABRE_SEALING_KEYS = ring(("sk-test", bytes(range(32))))
    old = signing.sign(DOCUMENT)
    settings.PALABRE_SEALING_KEYS = ring(("sk-new", b"\x07" * 32), ("sk-test", bytes(range(32))))
    assert signing.sign(DOCUMENT)[1] == "sk-new"
    assert signing.verify(DOCUMENT, *old)
    assert [key["key_id"] for key in signing.public_keys()] == ["sk-new", "sk-test"]


def test_malformed_sealing_ring_names_its_variable():
    with pytest.raises(KeyRingError, match="PALABRE_SEALING_KEYS"):
        signing.parse_sealing_keys("sk-1:AAAA")
