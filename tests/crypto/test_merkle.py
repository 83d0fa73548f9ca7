import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.merkle import leaf_hash, merkle_proof, merkle_root, new_receipt, verify_proof


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_leaf(receipt: str, ballot_id: str, choice: str) -> str:
    return _sha(b"\x00" + f"{receipt}\n{ballot_id}\n{choice}".encode()).hex()


def reference_root(leaves: list[str]) -> str:
    """PROTOCOL.md read literally, written independently of crypto.merkle."""
    nodes = [bytes.fromhex(leaf) for leaf in sorted(leaves)]
    if not nodes:
        return _sha(b"").hex()
    while len(nodes) > 1:
        parents = []
        for i in range(0, len(nodes), 2):
            if i + 1 < len(nodes):
                parents.append(_sha(b"\x01" + nodes[i] + nodes[i + 1]))
            else:
                parents.append(nodes[i])
        nodes = parents
    return nodes[0].hex()


# leaf_hash(f"{i:064x}", "ballot-1", "accept" if i is odd else "refuse") for i = 1..5
LEAVES = [
    "63bfb520102ecfc3c2dd473865ea63b2a0e6790fbc5285917c73a4cc3279984b",
    "d46345c8836309c558e2ecf86b5c06d13c2997ef3e2ec02ae84b90e58ace2ed5",
    "2f80a97f573a754415291443378a4811fd168610651edf1471a3b7edc598d3d1",
    "8e8686afcb7a79bbcf95b7bfe7089b0daa27b5d78d2f980d4be188f01865c008",
    "955f8ec689d7706de9d523514a83bc929219e944fbee0d6eb25bd69ca98a5d35",
]
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "63bfb520102ecfc3c2dd473865ea63b2a0e6790fbc5285917c73a4cc3279984b",
    2: "3db3f9fe8e0316485a9f8f0d73cd2010affe4cb1556f75ccf8e54387a5d55ab0",
    3: "cc0924cfd0adab4f09bbb9825706ebac6b81907c82f49a6680a0d16f20738032",
    5: "980dce9b64720439707f0bf8fa31a79f85acdc71a51a4a88810f488aebe94c1d",
}


def test_leaf_vectors():
    for i, leaf in enumerate(LEAVES, start=1):
        args = (f"{i:064x}", "ballot-1", "accept" if i % 2 else "refuse")
        assert leaf_hash(*args) == reference_leaf(*args) == leaf


@pytest.mark.parametrize("count", sorted(ROOTS))
def test_root_vectors(count):
    assert merkle_root(LEAVES[:count]) == reference_root(LEAVES[:count]) == ROOTS[count]


def test_three_leaves_carry_the_odd_one_up_unchanged():
    a, b, c = (bytes.fromhex(leaf) for leaf in sorted(LEAVES[:3]))
    assert ROOTS[3] == _sha(b"\x01" + _sha(b"\x01" + a + b) + c).hex()


def test_proof_for_the_carried_up_leaf_skips_its_lonely_level():
    last = sorted(LEAVES[:3])[-1]
    assert merkle_proof(LEAVES[:3], last) == [
        {"side": "left", "hash": reference_root(sorted(LEAVES[:3])[:2])}
    ]


def test_single_leaf_proof_is_empty_and_verifies():
    assert merkle_proof(LEAVES[:1], LEAVES[0]) == []
    assert verify_proof(LEAVES[0], [], ROOTS[1])


def test_proof_of_an_absent_leaf_raises():
    with pytest.raises(KeyError):
        merkle_proof(LEAVES[:3], LEAVES[4])
    with pytest.raises(KeyError):
        merkle_proof([], LEAVES[0])


def test_leaves_that_are_not_digests_are_refused():
    with pytest.raises(ValueError):
        merkle_root(["abcd"])
    with pytest.raises(ValueError):
        merkle_root(["zz" * 32])
    with pytest.raises(ValueError):
        merkle_root([LEAVES[0], "  " + LEAVES[1][2:]])  # fromhex alone would skip spaces
    with pytest.raises(ValueError):
        merkle_root([LEAVES[0].upper()])  # would sort apart from the protocol's lowercase


def test_receipts_are_256_random_bits_in_lowercase_hex():
    receipt = new_receipt()
    assert len(receipt) == 64 and receipt == receipt.lower()
    int(receipt, 16)
    assert new_receipt() != receipt


@pytest.mark.parametrize(
    ("leaf", "path", "root"),
    [
        (None, [], ROOTS[1]),
        (LEAVES[0], None, ROOTS[1]),
        (LEAVES[0], "left", ROOTS[1]),
        (LEAVES[0], [{"side": "up", "hash": LEAVES[1]}], ROOTS[2]),
        (LEAVES[0], [{"side": "left"}], ROOTS[2]),
        (LEAVES[0], [{"side": "left", "hash": "xyz"}], ROOTS[2]),
        (LEAVES[0], [{"side": "left", "hash": "ab"}], ROOTS[2]),
        (LEAVES[0], [["left", LEAVES[1]]], ROOTS[2]),
        (LEAVES[0], [], "nothex"),
        (LEAVES[0], [], ROOTS[1][:-2]),
    ],
)
def test_malformed_proofs_verify_false_without_raising(leaf, path, root):
    assert verify_proof(leaf, path, root) is False


digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
leaf_sets = st.lists(digests, min_size=1, max_size=300, unique=True)


@settings(max_examples=60, deadline=None)
@given(leaves=leaf_sets, data=st.data())
def test_every_leaf_proof_verifies_and_any_change_breaks_it(leaves, data):
    root = merkle_root(leaves)
    assert root == reference_root(leaves)
    for leaf in leaves:
        assert verify_proof(leaf, merkle_proof(leaves, leaf), root)

    leaf = data.draw(st.sampled_from(leaves))
    path = merkle_proof(leaves, leaf)
    other = data.draw(digests.filter(lambda d: d != leaf))
    assert not verify_proof(other, path, root)
    if path:
        i = data.draw(st.integers(0, len(path) - 1))
        changed_hash = [dict(step) for step in path]
        changed_hash[i]["hash"] = data.draw(digests.filter(lambda d: d != path[i]["hash"]))
        assert not verify_proof(leaf, changed_hash, root)

        flipped = [dict(step) for step in path]
        flipped[i]["side"] = {"left": "right", "right": "left"}[path[i]["side"]]
        assert not verify_proof(leaf, flipped, root)

        cut = data.draw(st.integers(0, len(path) - 1))
        assert not verify_proof(leaf, path[:cut], root)


@given(leaves=leaf_sets, order=st.randoms(use_true_random=False))
def test_root_does_not_depend_on_input_order(leaves, order):
    shuffled = list(leaves)
    order.shuffle(shuffled)
    assert merkle_root(shuffled) == merkle_root(leaves) == merkle_root(iter(leaves))
