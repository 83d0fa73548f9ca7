"""Envelope encryption: per-room data keys wrapped by master keys from the environment.

Rotating the master key means prepending a new key to ``PALABRE_MASTER_KEYS`` and
rewrapping the room keys (a few bytes each), never re-encrypting messages. Shredding
a room means deleting its wrapped key; the master keys stay.
"""

import functools

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from ._rings import generate_ring, parse_ring, setting
from .aead import DATA_KEY_BYTES
from .errors import KeyUnavailable, TamperedError

SETTING = "PALABRE_MASTER_KEYS"
_MASTER_KEY_BYTES = 32


def parse_master_keys(text: str) -> list[tuple[str, bytes]]:
    return parse_ring(text, variable=SETTING, key_length=_MASTER_KEY_BYTES)


def generate_master_keys() -> str:
    return generate_ring("mk", _MASTER_KEY_BYTES)


@functools.lru_cache(maxsize=8)
def _ring_for(text: str) -> tuple[str, dict[str, bytes]]:
    # Cached on the string itself: swapping the setting (tests, a reload) takes effect.
    ring = parse_master_keys(text)
    return ring[0][0], dict(ring)


def _ring() -> tuple[str, dict[str, bytes]]:
    return _ring_for(setting(SETTING))


def newest_master_key_id() -> str:
    return _ring()[0]


def wrap_data_key(data_key: bytes) -> tuple[str, bytes]:
    """Wrap with the newest master key (RFC 3394); returns the id to store beside it."""
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes")
    newest, keys = _ring()
    return newest, aes_key_wrap(keys[newest], data_key)


def unwrap_data_key(key_id: str, wrapped: bytes) -> bytes:
    keys = _ring()[1]
    if key_id not in keys:
        raise KeyUnavailable(f"master key {key_id!r} is not in {SETTING}")
    try:
        return aes_key_unwrap(keys[key_id], wrapped)
    except (InvalidUnwrap, ValueError):
        raise TamperedError(f"wrapped data key failed to unwrap under {key_id!r}") from None


def rewrap_data_key(key_id: str, wrapped: bytes) -> tuple[str, bytes]:
    """Move a wrapped key to the newest master key, so an old one can be retired."""
    return wrap_data_key(unwrap_data_key(key_id, wrapped))
