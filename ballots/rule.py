"""The vote rule of DESIGN.md ("The vote rule (exact)"), in integers only.

The threshold is stored in basis points (7500 for 75 %), so ``t × eligible`` is the
fraction ``bp × eligible / 10 000`` and nothing is ever rounded in floating point.
"""

from __future__ import annotations

ACCEPTED = "accepted"
REJECTED = "rejected"
BASIS = 10_000


def needed(eligible: int, threshold_bp: int) -> int:
    """``ceil(t × eligible)``: the accepts that carry the offer (75 % of 10: 8)."""
    return -(-threshold_bp * eligible // BASIS)


def meets_threshold(accept: int, eligible: int, threshold_bp: int) -> bool:
    # accept ≥ ceil(x) ⟺ accept ≥ x for an integer accept: one multiplication, no ceil.
    return accept * BASIS >= threshold_bp * eligible


def outcome_at_seal(accept: int, eligible: int, threshold_bp: int) -> str:
    """The outcome when the ballot seals, whatever the reason: not voting is not accepting."""
    return ACCEPTED if meets_threshold(accept, eligible, threshold_bp) else REJECTED


def certain_outcome(accept: int, refuse: int, eligible: int, threshold_bp: int) -> str | None:
    """The outcome if no vote still to come can change it, else None.

    Accepted as soon as the accepts reach the threshold (votes are final and only ever
    added); rejected as soon as ``refuse > eligible − needed``: even if every remaining
    elector accepted, the accepts would stay below the threshold.
    """
    if meets_threshold(accept, eligible, threshold_bp):
        return ACCEPTED
    if refuse > eligible - needed(eligible, threshold_bp):
        return REJECTED
    return None
