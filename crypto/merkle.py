"""The Merkle tree over vote commitments, exactly as PROTOCOL.md defines it.

Leaves are sorted so the root doesn't depend on the order votes were stored in;
0x00 / 0x01 prefixes keep a leaf from ever passing for an inner node. Hashing works
on lists of raw 32-byte digests, level by level, so 150,000 leaves take ~0.15 s.
"""

import hashlib
import secrets
from bisect import bisect_left
from collections.abc import Iterable

_LEAF = b"\x00"
_NODE = b"\x01"
_DIGEST_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def new_receipt() -> str:
    """256 random bits: unguessable, and says nothing of who voted."""
    return secrets.token_hex(32)


def leaf_hash(receipt: str, ballot_id: str, choice: str) -> str:
    return hashlib.sha256(_LEAF + f"{receipt}\n{ballot_id}\n{choice}".encode()).hexdigest()


def _sorted_leaves(leaves: Iterable[str]) -> tuple[list[str], bytes]:
    """The leaves sorted by hex, and their digests concatenated in that order.

    One ``bytes.fromhex`` over the joined string is far cheaper than one per leaf;
    the length checks also refuse any leaf that isn't 64 hex digits (whitespace,
    which ``fromhex`` would skip, shortens the bytes), and upper case is refused
    because it would sort differently from the protocol's lowercase hex.
    """
    ordered = sorted(leaves)
    joined = "".join(ordered)
    raw = bytes.fromhex(joined)
    if (
        len(joined) != 2 * _DIGEST_BYTES * len(ordered)
        or 2 * len(raw) != len(joined)
        or joined != joined.lower()
    ):
        raise ValueError("every leaf must be a lowercase hex SHA-256 digest")
    return ordered, raw


def _first_level(raw: bytes) -> list[bytes]:
    # Pairs of leaves are adjacent 64-byte slices of ``raw``: no per-leaf objects.
    sha256, pair = hashlib.sha256, 2 * _DIGEST_BYTES
    parents = [
        sha256(_NODE + raw[i : i + pair]).digest()
        for i in range(0, len(raw) - len(raw) % pair, pair)
    ]
    if len(raw) % pair:
        parents.append(raw[-_DIGEST_BYTES:])  # the odd last node is carried up unchanged
    return parents


def _next_level(level: list[bytes]) -> list[bytes]:
    sha256 = hashlib.sha256
    parents = [
        sha256(_NODE + left + right).digest()
        for left, right in zip(level[::2], level[1::2], strict=False)
    ]
    if len(level) % 2:
        parents.append(level[-1])  # the odd last node is carried up unchanged
    return parents


def merkle_root(leaves: Iterable[str]) -> str:
    _, raw = _sorted_leaves(leaves)
    if not raw:
        return EMPTY_ROOT
    level = _first_level(raw)
    while len(level) > 1:
        level = _next_level(level)
    return level[0].hex()


def _step(index: int, sibling: bytes) -> dict:
    return {"side": "left" if index % 2 else "right", "hash": sibling.hex()}


def merkle_proof(leaves: Iterable[str], leaf: str) -> list[dict]:
    """The sibling path from ``leaf`` to the root; KeyError if the leaf isn't there."""
    ordered, raw = _sorted_leaves(leaves)
    index = bisect_left(ordered, leaf)
    if index == len(ordered) or ordered[index] != leaf:
        raise KeyError(leaf)
    path = []
    # index ^ 1 is the sibling; past the end means this node is carried up alone.
    if (sibling := index ^ 1) < len(ordered):
        path.append(_step(index, raw[sibling * _DIGEST_BYTES : (sibling + 1) * _DIGEST_BYTES]))
    level, index = _first_level(raw), index // 2
    while len(level) > 1:
        if (sibling := index ^ 1) < len(level):
            path.append(_step(index, level[sibling]))
        level, index = _next_level(level), index // 2
    return path


def verify_proof(leaf: str, path: list[dict], root: str) -> bool:
    """Recompute the root from a leaf and its path; False on any malformed input."""
    try:
        node = bytes.fromhex(leaf)
        expected = bytes.fromhex(root)
        if len(node) != _DIGEST_BYTES or len(expected) != _DIGEST_BYTES:
            return False
        for step in path:
            sibling = bytes.fromhex(step["hash"])
            if len(sibling) != _DIGEST_BYTES:
                return False
            if step["side"] == "left":
                node = hashlib.sha256(_NODE + sibling + node).digest()
            elif step["side"] == "right":
                node = hashlib.sha256(_NODE + node + sibling).digest()
            else:
                return False
    except (TypeError, ValueError, KeyError, AttributeError):
        return False
    return node == expected
