"""AES-256-GCM encryption of message bodies, offer terms and attachments at rest.

A blob is ``version ‖ nonce ‖ ciphertext+tag``. The version byte lets a later
format coexist with stored blobs; it is also authenticated (part of the associated
data), so it can't be swapped to downgrade a blob.
"""

import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import TamperedError

VERSION = 1
_VERSION_BYTE = bytes([VERSION])
_NONCE_BYTES = 12
_TAG_BYTES = 16
DATA_KEY_BYTES = 32


def new_data_key() -> bytes:
    return os.urandom(DATA_KEY_BYTES)


def associated_data(*, room_id: str, seq: int, event_type: str) -> bytes:
    """Bind a ciphertext to its place in the log so it can't be moved or replayed.

    A JSON array is unambiguous (no separator a room id could forge) and the
    "palabre.v1" label keeps these bytes distinct from any other use of the key.
    """
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise TypeError("seq must be an int")
    return json.dumps(
        ["palabre.v1", str(room_id), seq, str(event_type)],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def encrypt(data_key: bytes, plaintext: str, *, aad: bytes) -> bytes:
    """Encrypt with a fresh random nonce: 2^32 messages per room key stay far below
    GCM's random-nonce collision bound."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, plaintext.encode("utf-8"), _VERSION_BYTE + aad)
    return _VERSION_BYTE + nonce + sealed


def decrypt(data_key: bytes, blob: bytes, *, aad: bytes) -> str:
    """Return the plaintext, or raise TamperedError: never unauthenticated bytes."""
    if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES or blob[0] != VERSION:
        raise TamperedError("ciphertext is truncated or of an unknown version")
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        plaintext = AESGCM(data_key).decrypt(nonce, sealed, _VERSION_BYTE + aad)
    except (InvalidTag, ValueError, TypeError):
        raise TamperedError("ciphertext failed authentication") from None
    return plaintext.decode("utf-8")
