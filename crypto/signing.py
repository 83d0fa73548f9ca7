"""Ed25519 seals: anyone holding a published public key can verify a ballot's outcome.

Keys are stored as 32-byte seeds (``id:base64seed``, newest first). Old keys stay in
the ring after a rotation so that seals they made keep verifying and stay published.
"""

import base64
import binascii
import functools
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ._rings import generate_ring, parse_ring, setting

SETTING = "PALABRE_SEALING_KEYS"
ALGORITHM = "Ed25519"
_SEED_BYTES = 32


def parse_sealing_keys(text: str) -> list[tuple[str, Ed25519PrivateKey]]:
    return [
        (key_id, Ed25519PrivateKey.from_private_bytes(seed))
        for key_id, seed in parse_ring(text, variable=SETTING, key_length=_SEED_BYTES)
    ]


def generate_sealing_keys() -> str:
    return generate_ring("sk", _SEED_BYTES)


def canonical_json(doc: Any) -> bytes:
    """The exact bytes that are signed and hashed (PROTOCOL.md): any client can rebuild them."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_hash(doc: Any) -> str:
    return sha256_hex(canonical_json(doc))


@functools.lru_cache(maxsize=8)
def _ring_for(text: str) -> tuple[tuple[str, Ed25519PrivateKey, Ed25519PublicKey], ...]:
    # Cached on the string itself: swapping the setting (tests, a reload) takes effect.
    return tuple((key_id, key, key.public_key()) for key_id, key in parse_sealing_keys(text))


def _ring() -> tuple[tuple[str, Ed25519PrivateKey, Ed25519PublicKey], ...]:
    return _ring_for(setting(SETTING))


def sign(doc: dict) -> tuple[str, str]:
    """Sign with the newest key; returns (base64 signature, key id)."""
    key_id, private_key, _ = _ring()[0]
    signature = private_key.sign(canonical_json(doc))
    return base64.b64encode(signature).decode("ascii"), key_id


def verify(doc: dict, signature: str, key_id: str) -> bool:
    """False for any signature that doesn't check out; a forged seal is not an error."""
    public_key = next((pub for kid, _, pub in _ring() if kid == key_id), None)
    if public_key is None:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, canonical_json(doc))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def public_keys() -> list[dict]:
    """What ``GET /api/v1/keys`` publishes, newest first."""
    return [
        {
            "key_id": key_id,
            "algorithm": ALGORITHM,
            "public_key": base64.b64encode(
                public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
            ).decode("ascii"),
        }
        for key_id, _, public_key in _ring()
    ]
