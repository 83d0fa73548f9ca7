"""The integer rule against a model written differently: exact fractions, and for small
electorates every way the remaining electors could still vote (issue 6, item 7)."""

from fractions import Fraction
from math import ceil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ballots import rule

THRESHOLDS_BP = [7500, 5000, 5001, 6667, 6666, 1, 9999, 10_000, 3333]


def accepted_model(accept: int, eligible: int, bp: int) -> bool:
    return accept >= ceil(Fraction(bp, 10_000) * eligible)


def certain_model(accept: int, refuse: int, eligible: int, bp: int) -> str | None:
    """Brute force: the outcome every completion of the vote leads to, if they agree.
    Each of the ``eligible − accept − refuse`` electors left may accept, refuse or abstain:
    what matters is how many more accept, anywhere from none to all of them."""
    left = eligible - accept - refuse
    need = ceil(Fraction(bp, 10_000) * eligible)
    outcomes = {accept + more >= need for more in range(left + 1)}
    if outcomes == {True}:
        return rule.ACCEPTED
    if outcomes == {False}:
        return rule.REJECTED
    return None


def test_the_examples_of_the_design():
    assert rule.needed(10, 7500) == 8
    assert rule.outcome_at_seal(8, 10, 7500) == rule.ACCEPTED
    assert rule.outcome_at_seal(7, 10, 7500) == rule.REJECTED
    assert rule.outcome_at_seal(111_750, 149_000, 7500) == rule.ACCEPTED
    assert rule.outcome_at_seal(111_749, 149_000, 7500) == rule.REJECTED
    # 75 % as 4 × accept ≥ 3 × eligible
    assert all(
        rule.meets_threshold(a, e, 7500) == (4 * a >= 3 * e) for e in range(0, 200) for a in range(e + 1)
    )


def test_exactly_the_threshold_and_one_short():
    assert rule.certain_outcome(8, 0, 10, 7500) == rule.ACCEPTED
    assert rule.certain_outcome(7, 0, 10, 7500) is None
    assert rule.certain_outcome(7, 3, 10, 7500) == rule.REJECTED  # 8 can no longer be reached
    assert rule.certain_outcome(0, 2, 10, 7500) is None  # 8 of the 8 left could still accept
    assert rule.certain_outcome(0, 3, 10, 7500) == rule.REJECTED


def test_one_elector():
    assert rule.certain_outcome(0, 0, 1, 7500) is None
    assert rule.certain_outcome(1, 0, 1, 7500) == rule.ACCEPTED
    assert rule.certain_outcome(0, 1, 1, 7500) == rule.REJECTED
    assert rule.outcome_at_seal(0, 1, 7500) == rule.REJECTED  # nobody voted: not accepted


@pytest.mark.parametrize("bp", THRESHOLDS_BP)
def test_every_split_of_every_electorate_up_to_60(bp):
    checked = 0
    for eligible in range(1, 61):
        for accept in range(eligible + 1):
            for refuse in range(eligible - accept + 1):
                assert rule.certain_outcome(accept, refuse, eligible, bp) == certain_model(
                    accept, refuse, eligible, bp
                ), (accept, refuse, eligible, bp)
                expected = rule.ACCEPTED if accepted_model(accept, eligible, bp) else rule.REJECTED
                assert rule.outcome_at_seal(accept, eligible, bp) == expected
                checked += 1
    assert checked == sum((e + 1) * (e + 2) // 2 for e in range(1, 61))


@st.composite
def ballots(draw):
    eligible = draw(st.integers(min_value=1, max_value=150_000))
    accept = draw(st.integers(min_value=0, max_value=eligible))
    refuse = draw(st.integers(min_value=0, max_value=eligible - accept))
    bp = draw(st.one_of(st.sampled_from(THRESHOLDS_BP), st.integers(min_value=1, max_value=10_000)))
    return accept, refuse, eligible, bp


@settings(max_examples=600, deadline=None)
@given(ballots())
def test_large_electorates_against_fractions(case):
    accept, refuse, eligible, bp = case
    need = ceil(Fraction(bp, 10_000) * eligible)
    assert rule.needed(eligible, bp) == need
    assert rule.meets_threshold(accept, eligible, bp) == (accept >= need)
    # Certain: accepted once reached; rejected once even all the rest accepting falls short.
    left = eligible - accept - refuse
    if accept >= need:
        expected = rule.ACCEPTED
    elif accept + left < need:
        expected = rule.REJECTED
    else:
        expected = None
    assert rule.certain_outcome(accept, refuse, eligible, bp) == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=150_000), st.integers(min_value=1, max_value=10_000))
def test_the_boundary_of_every_large_electorate(eligible, bp):
    need = rule.needed(eligible, bp)
    assert rule.outcome_at_seal(need, eligible, bp) == rule.ACCEPTED
    if need > 0:
        assert rule.outcome_at_seal(need - 1, eligible, bp) == rule.REJECTED
        assert rule.certain_outcome(need - 1, 0, eligible, bp) is None
    # Refusals: rejected exactly when they pass eligible − need.
    assert rule.certain_outcome(0, eligible - need, eligible, bp) in (None, rule.ACCEPTED if need == 0 else None)
    if eligible - need + 1 <= eligible and need > 0:
        assert rule.certain_outcome(0, eligible - need + 1, eligible, bp) == rule.REJECTED
