"""Micro-benchmarks of crypto/: is it ever the bottleneck of a 150,000-member mediation?

Run: ``python bench/crypto_bench.py [--json] [--leaves N]``. Needs no database and no
project settings: the key rings are fresh ones configured in memory.
"""

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from django.conf import settings  # noqa: E402

from crypto import aead, keyring, merkle, signing  # noqa: E402

BODY = (
    "Bonjour à toutes et à tous. La société propose un remboursement de 84,50 € par "
    "adhérent au titre des frais d'abonnement prélevés sans accord entre 2021 et 2023. "
    "Le vote sera ouvert demain à 10 h et clos vendredi à minuit ; prenez le temps de "
    "lire les conditions et posez vos questions à la médiatrice avant de voter."
)[:300].ljust(300, ".")


def _median_per_op(fn, ops: int, runs: int) -> float:
    """Median over runs of the mean seconds per op: robust to a stray GC or scheduler blip."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(ops):
            fn()
        samples.append((time.perf_counter() - start) / ops)
    return statistics.median(samples)


def run(leaves_count: int, runs: int) -> list[tuple[str, float, str]]:
    data_key = aead.new_data_key()
    aad = aead.associated_data(room_id="room-1", seq=123_456, event_type="chat.message")
    blob = aead.encrypt(data_key, BODY, aad=aad)
    key_id, wrapped = keyring.wrap_data_key(data_key)
    leaves = [
        merkle.leaf_hash(merkle.new_receipt(), "ballot-1", "accept" if i % 4 else "refuse")
        for i in range(leaves_count)
    ]
    root = merkle.merkle_root(leaves)
    proof = merkle.merkle_proof(leaves, leaves[leaves_count // 3])

    def seal():
        document = {
            "version": 1,
            "mediation_id": "m-1",
            "ballot_id": "ballot-1",
            "offer_id": "o-1",
            "offer_hash": "ab" * 32,
            "eligible": leaves_count,
            "electorate_hash": "cd" * 32,
            "accept": leaves_count * 3 // 4,
            "refuse": leaves_count - leaves_count * 3 // 4,
            "threshold": "0.75",
            "outcome": "accepted",
            "opened_at": "2025-06-01T10:00:00+00:00",
            "sealed_at": "2025-06-06T23:59:59+00:00",
            "merkle_root": merkle.merkle_root(leaves),
        }
        return signing.sign(document)

    big = max(1, runs)
    return [
        ("encrypt (300-char message)", _median_per_op(lambda: aead.encrypt(data_key, BODY, aad=aad), 2000, runs) * 1e6, "µs"),
        ("decrypt (300-char message)", _median_per_op(lambda: aead.decrypt(data_key, blob, aad=aad), 2000, runs) * 1e6, "µs"),
        ("encrypt + decrypt", _median_per_op(lambda: aead.decrypt(data_key, aead.encrypt(data_key, BODY, aad=aad), aad=aad), 2000, runs) * 1e6, "µs"),
        ("wrap data key", _median_per_op(lambda: keyring.wrap_data_key(data_key), 2000, runs) * 1e6, "µs"),
        ("unwrap data key", _median_per_op(lambda: keyring.unwrap_data_key(key_id, wrapped), 2000, runs) * 1e6, "µs"),
        ("leaf_hash", _median_per_op(lambda: merkle.leaf_hash("ab" * 32, "ballot-1", "accept"), 20000, runs) * 1e6, "µs"),
        (f"Merkle root, {leaves_count:,} leaves", _median_per_op(lambda: merkle.merkle_root(leaves), 1, big) * 1e3, "ms"),
        (f"root + Ed25519 seal, {leaves_count:,} commitments", _median_per_op(seal, 1, big) * 1e3, "ms"),
        (f"Merkle proof, {leaves_count:,} leaves", _median_per_op(lambda: merkle.merkle_proof(leaves, leaves[7]), 1, big) * 1e3, "ms"),
        (f"verify proof ({len(proof)} steps)", _median_per_op(lambda: merkle.verify_proof(leaves[leaves_count // 3], proof, root), 2000, runs) * 1e6, "µs"),
        ("Ed25519 sign + verify of a small document", _median_per_op(lambda: signing.verify({"merkle_root": root}, *signing.sign({"merkle_root": root})), 500, runs) * 1e6, "µs"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--leaves", type=int, default=150_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    settings.configure(
        PALABRE_MASTER_KEYS=keyring.generate_master_keys(),
        PALABRE_SEALING_KEYS=signing.generate_sealing_keys(),
    )
    started = time.perf_counter()
    results = run(args.leaves, args.runs)
    elapsed = time.perf_counter() - started

    if args.json:
        print(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                    "runs": args.runs,
                    "leaves": args.leaves,
                    "elapsed_s": round(elapsed, 2),
                    "results": [
                        {"measure": name, "value": round(value, 2), "unit": unit}
                        for name, value, unit in results
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    print(
        f"Python {platform.python_version()} on {platform.machine()}, median of {args.runs} runs\n"
    )
    print("| measure | median | unit |")
    print("| --- | ---: | --- |")
    for name, value, unit in results:
        print(f"| {name} | {value:,.2f} | {unit} |")
    print(f"\n_total {elapsed:.1f} s_")


if __name__ == "__main__":
    main()
