"""The bulletin board of a sealed ballot and its Merkle tree, kept in process memory.

A sealed ballot never changes, so its tree is built once per process (on the first
``/board`` or ``/proof`` request) and every proof after that is a binary search and a
few slices, instead of rebuilding 150,000 leaves (~130 ms) per request. Each level is
one ``bytes`` of concatenated 32-byte digests: about 10 MB for 150,000 votes, however
many requests follow. The tree is exactly PROTOCOL.md's (and ``crypto.merkle``'s):
leaves sorted by hex, ``SHA-256(0x01 ‖ left ‖ right)`` pairwise, an odd last node carried
up unchanged; the tests check it against ``crypto.merkle`` leaf for leaf.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from bisect import bisect_left
from collections import OrderedDict

from ballots.models import Ballot, Choice, Vote
from crypto.merkle import EMPTY_ROOT

logger = logging.getLogger("palabre.ballots")

_NODE = b"\x01"
_DIGEST = 32
CACHED_BALLOTS = 4


class _Digests:
    """The sorted leaves as a sequence of raw digests, for ``bisect``."""

    def __init__(self, blob: bytes):
        self.blob = blob

    def __len__(self) -> int:
        return len(self.blob) // _DIGEST

    def __getitem__(self, index: int) -> bytes:
        return self.blob[index * _DIGEST : (index + 1) * _DIGEST]


class SealedBoard:
    def __init__(self, ballot_id: int, votes: list[tuple[str, str]]):
        votes = sorted(votes)
        self.ballot_id = ballot_id
        # Lowercase hex sorts as the raw bytes do: one order for the board and the tree.
        self.choices = bytes(1 if choice == Choice.ACCEPT else 0 for _leaf, choice in votes)
        self.levels: list[bytes] = [bytes.fromhex("".join(leaf for leaf, _choice in votes))]
        while len(self.levels[-1]) > _DIGEST:
            self.levels.append(_parents(self.levels[-1]))
        self.root = self.levels[-1].hex() if votes else EMPTY_ROOT
        self._json: bytes | None = None

    def __len__(self) -> int:
        return len(self.choices)

    def leaf_index(self, leaf_hex: str) -> int | None:
        leaf = bytes.fromhex(leaf_hex)
        digests = _Digests(self.levels[0])
        index = bisect_left(digests, leaf)
        if index < len(digests) and digests[index] == leaf:
            return index
        return None

    def choice_at(self, index: int) -> str:
        return Choice.ACCEPT if self.choices[index] else Choice.REFUSE

    def proof(self, index: int) -> list[dict]:
        """The sibling path from leaf ``index`` to the root (PROTOCOL.md: each step's
        ``side`` is the side of the sibling)."""
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling * _DIGEST < len(level):  # else: carried up alone, no step
                path.append(
                    {
                        "side": "left" if index % 2 else "right",
                        "hash": level[sibling * _DIGEST : (sibling + 1) * _DIGEST].hex(),
                    }
                )
            index //= 2
        return path

    def counts(self) -> tuple[int, int]:
        accept = sum(self.choices)
        return accept, len(self.choices) - accept

    def as_json(self) -> bytes:
        """``GET /board``'s body, serialised once."""
        if self._json is None:
            leaves = self.levels[0]
            entries = [
                {"leaf": leaves[i * _DIGEST : (i + 1) * _DIGEST].hex(), "choice": self.choice_at(i)}
                for i in range(len(self))
            ]
            body = {"ballot_id": str(self.ballot_id), "leaves": entries, "merkle_root": self.root}
            self._json = json.dumps(body, separators=(",", ":")).encode()
        return self._json


def _parents(level: bytes) -> bytes:
    sha256, pair = hashlib.sha256, 2 * _DIGEST
    even = len(level) - len(level) % pair
    parents = b"".join(sha256(_NODE + level[i : i + pair]).digest() for i in range(0, even, pair))
    return parents + level[even:]  # the odd last node is carried up unchanged


_cache: OrderedDict[tuple[int, str], SealedBoard] = OrderedDict()
_lock = threading.Lock()


def sealed_board(ballot: Ballot) -> SealedBoard:
    """The board of a sealed ballot, from this process's cache or built from its votes.
    Keyed on the sealed root as well as the id: a board never outlives its seal."""
    key = (ballot.pk, ballot.merkle_root)
    with _lock:
        board = _cache.get(key)
        if board is not None:
            _cache.move_to_end(key)
            return board
    board = SealedBoard(ballot.pk, list(Vote.objects.filter(ballot_id=ballot.pk).values_list("commitment", "choice")))
    if board.root != ballot.merkle_root:
        # The stored votes no longer match the seal: serve what is stored (its proofs
        # will not verify against the signed root, which is how a voter finds out) and
        # say so loudly; ``verify_seal`` names the difference.
        logger.error("ballot %s: stored votes do not match the sealed Merkle root", ballot.pk)
    with _lock:
        _cache[key] = board
        while len(_cache) > CACHED_BALLOTS:
            _cache.popitem(last=False)
    return board
