"""Parsing shared by the master key ring and the sealing key ring.

Both rings are ``id:base64,id:base64,...`` with the newest key first, so that an
operator rotates by prepending a key and removes an old one only once nothing
depends on it any more.
"""

import base64
import binascii
import re
import secrets
from datetime import UTC, datetime

from .errors import KeyRingError

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def parse_ring(text: str, *, variable: str, key_length: int) -> list[tuple[str, bytes]]:
    """Parse a ring string; messages name the variable but never echo key material."""
    if not isinstance(text, str) or not text.strip():
        raise KeyRingError(f"{variable} is empty: expected 'key_id:base64key[,...]'")
    ring: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for position, entry in enumerate(text.split(","), start=1):
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep:
            raise KeyRingError(f"{variable}: entry {position} is not 'key_id:base64key'")
        if not _KEY_ID.fullmatch(key_id):
            raise KeyRingError(
                f"{variable}: entry {position} has an invalid key id "
                "(expected 1 to 32 characters among A-Z a-z 0-9 _ -)"
            )
        if key_id in seen:
            raise KeyRingError(f"{variable}: key id {key_id!r} appears twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyRingError(f"{variable}: key {key_id!r} is not valid base64") from None
        if len(key) != key_length:
            raise KeyRingError(
                f"{variable}: key {key_id!r} is {len(key)} bytes, expected {key_length}"
            )
        seen.add(key_id)
        ring.append((key_id, key))
    return ring


def generate_ring(prefix: str, key_length: int) -> str:
    """A one-entry ring; the date in the id tells an operator which key is older."""
    key_id = f"{prefix}-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(key_length)).decode('ascii')}"


def setting(name: str) -> str:
    """Read a ring from Django settings at call time, so tests can swap it."""
    from django.conf import settings

    value = getattr(settings, name, None)
    if not value:
        raise KeyRingError(f"{name} is not set")
    return value
