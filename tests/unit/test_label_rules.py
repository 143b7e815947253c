"""Label rules (prmkit.label.rules): every expected value below is computed by hand in a comment."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prmkit.errors import InputError
from prmkit.label.rules import (
    TreeNode,
    best_of_k_q,
    binary_search_first_error,
    consensus_keep,
    first_error_from_labels,
    mc_hard_labels,
    mc_soft_labels,
    omega_labels,
    omega_q_value,
    omega_select_score,
    omega_u_value,
    pav_effective_reward,
    progress,
    relative_progress,
    relative_progress_labels,
    rest_mcts_value_targets,
    scan_keep_question,
    scan_normalized_labels,
    scan_robust_targets,
    self_confidence,
)

approx = pytest.approx

# ---------------------------------------------------------------------------------------------
# Math-Shepherd hard / soft MC labels (§3.1)


def test_mc_labels_hand_values():
    # K = 8 completions per step; 8, 3, 0 of them correct
    # hard: 8>0 -> 1, 3>0 -> 1, 0 -> 0 ; soft: 8/8 = 1, 3/8 = 0.375, 0/8 = 0
    assert mc_hard_labels([8, 3, 0], 8) == [1.0, 1.0, 0.0]
    assert mc_soft_labels([8, 3, 0], 8) == [1.0, 0.375, 0.0]


def test_mc_labels_edges():
    # no correct rollout from step 1 already -> both rules give 0 at index 0
    assert mc_hard_labels([0, 0], 4) == [0.0, 0.0]
    # a single completion (k = 1): hard == soft == the completion's correctness
    assert mc_hard_labels([1, 0], 1) == mc_soft_labels([1, 0], 1) == [1.0, 0.0]
    # single-step trace, 1 of 4 correct: hard 1, soft 1/4
    assert mc_hard_labels([1], 4) == [1.0] and mc_soft_labels([1], 4) == [0.25]
    assert mc_hard_labels([], 8) == []


@pytest.mark.parametrize("counts, k, field", [
    ([1], 0, "k"), ([9], 8, "correct_counts[0]"), ([2, -1], 8, "correct_counts[1]"),
    ([2.5], 8, "correct_counts[0]"), ([True], 8, "correct_counts[0]"), ([1], 2.0, "k"),
])
def test_mc_labels_validation(counts, k, field):
    for fn in (mc_hard_labels, mc_soft_labels):
        with pytest.raises(ValueError, match=re.escape(f"field '{field}'")):
            fn(counts, k)


def test_first_error_from_labels():
    assert first_error_from_labels([1.0, 1.0, 0.0, 0.0]) == 2
    assert first_error_from_labels([1.0, 1.0]) == -1  # all steps correct
    assert first_error_from_labels([0.0]) == 0  # single step, wrong
    assert first_error_from_labels([]) == -1
    # soft labels [1, 0.375, 0]: 0.375 < 0.5 -> 1; with threshold 1e-9 only the exact 0 counts -> 2
    assert first_error_from_labels([1.0, 0.375, 0.0]) == 1
    assert first_error_from_labels([1.0, 0.375, 0.0], threshold=1e-9) == 2
    # omega labels round-trip: the None tail is never reached
    assert first_error_from_labels(omega_labels(5, 2)) == 2
    with pytest.raises(InputError, match=r"labels\[1\]"):
        first_error_from_labels([1.0, None, 0.0])


# ---------------------------------------------------------------------------------------------
# OmegaPRM binary search (§4.2)


def _probe(curve):
    return lambda i: curve[i]


def test_binary_search_hand_trace():
    # S = 8, MC = [1, .5, .5, .25, 0, 0, 0, 0]; first zero at 4.
    # probe 7 -> 0 (full prefix dead); lo=0 hi=7: mid 3 -> .25 > 0, lo=4; mid 5 -> 0, hi=5;
    # mid 4 -> 0, hi=4; stop -> 4 after probes [7, 3, 5, 4] (= ceil(log2 8) + 1 = 4)
    curve = [1.0, 0.5, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0]
    assert binary_search_first_error(8, _probe(curve)) == (4, [7, 3, 5, 4])
    # final answer known wrong: the probe of step 7 is skipped
    assert binary_search_first_error(8, _probe(curve), last_known_wrong=True) == (4, [3, 5, 4])


def test_binary_search_edges():
    # all prefixes recoverable: probe the last one (index 2) only -> -1
    assert binary_search_first_error(3, _probe([1.0, 1.0, 0.5])) == (-1, [2])
    # no correct rollout after step 1: probes 3; mid 1 -> 0, hi=1; mid 0 -> 0, hi=0 -> 0
    assert binary_search_first_error(4, _probe([0.0] * 4)) == (0, [3, 1, 0])
    # single-step traces
    assert binary_search_first_error(1, _probe([0.0])) == (0, [0])
    assert binary_search_first_error(1, _probe([0.5])) == (-1, [0])
    assert binary_search_first_error(1, _probe([0.5]), last_known_wrong=True) == (0, [])
    # k = 1 rollout per probe: MC is 0 or 1
    assert binary_search_first_error(3, _probe([1.0, 0.0, 0.0])) == (1, [2, 1, 0])


def test_binary_search_validation():
    with pytest.raises(InputError, match="num_steps"):
        binary_search_first_error(0, _probe([]))
    with pytest.raises(InputError, match=r"probe\(1\)"):
        binary_search_first_error(2, _probe([0.0, 1.5]))


@st.composite
def monotone_curves(draw):
    s = draw(st.integers(1, 64))
    zero_at = draw(st.integers(0, s))  # s means "never reaches 0"
    pos = st.floats(min_value=1e-6, max_value=1.0)
    head = sorted(draw(st.lists(pos, min_size=zero_at, max_size=zero_at)), reverse=True)
    return head + [0.0] * (s - zero_at)


@settings(max_examples=300, deadline=None)
@given(monotone_curves())
def test_binary_search_matches_linear_scan(curve):
    s = len(curve)
    brute = next((i for i, c in enumerate(curve) if c == 0.0), -1)
    found, probes = binary_search_first_error(s, _probe(curve))
    assert found == brute
    assert len(probes) <= math.ceil(math.log2(s)) + 1
    assert len(set(probes)) == len(probes)
    if brute != -1:
        found, probes = binary_search_first_error(s, _probe(curve), last_known_wrong=True)
        assert found == brute and len(probes) <= math.ceil(math.log2(s))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=1, max_size=40))
def test_binary_search_non_monotone_returns_a_probed_transition(curve):
    found, probes = binary_search_first_error(len(curve), _probe(curve))
    if found == -1:
        assert curve[-1] > 0
    else:
        assert curve[found] == 0.0 and found in probes
        assert found == 0 or (curve[found - 1] > 0 and found - 1 in probes)


def test_omega_labels():
    assert omega_labels(5, 2) == [1.0, 1.0, 0.0, None, None]
    assert omega_labels(3, -1) == [1.0, 1.0, 1.0]
    assert omega_labels(3, 0) == [0.0, None, None]
    assert omega_labels(1, 0) == [0.0]
    with pytest.raises(InputError, match="first_error"):
        omega_labels(3, 3)


# ---------------------------------------------------------------------------------------------
# OmegaPRM selection scores (§4.3)


def test_omega_scores_hand_values():
    # Q = 0.5^(1-0.5) * 0.9^(250/500) = sqrt(0.5) * sqrt(0.9) = sqrt(0.45) = 0.6708203932
    assert omega_q_value(0.5, 250, 0.5, 0.9, 500) == approx(0.6708203932)
    # MC = 1, empty rollout: 0.5^0 * 0.9^0 = 1 ; MC = 0, len = L: 0.5 * 0.9 = 0.45
    assert omega_q_value(1.0, 0) == approx(1.0)
    assert omega_q_value(0.0, 500) == approx(0.45)
    # U = 0.125 * sqrt(16) / (1 + 3) = 0.125 * 4 / 4 = 0.125 ; empty tree -> 0
    assert omega_u_value(0.125, 16, 3) == approx(0.125)
    assert omega_u_value(0.125, 0, 0) == 0.0
    # score = Q + U = 0.6708203932 + 0.125
    assert omega_select_score(0.5, 250, visits=3, total_visits=16) == approx(0.7958203932)
    with pytest.raises(InputError, match="mc"):
        omega_q_value(1.2, 10)
    with pytest.raises(InputError, match="'L'"):
        omega_q_value(0.5, 10, L=0)


# ---------------------------------------------------------------------------------------------
# SCAN (§5)


def test_self_confidence():
    assert self_confidence(96, 128) == 0.75  # 96/128
    assert self_confidence(0, 1) == 0.0 and self_confidence(1, 1) == 1.0  # N = 1
    assert scan_keep_question(0.75) and not scan_keep_question(0.7421875)  # 95/128 < 0.75
    with pytest.raises(InputError, match="total"):
        self_confidence(0, 0)
    with pytest.raises(InputError, match="correct"):
        self_confidence(5, 4)


def test_scan_normalized_labels_hand_values():
    mc = [0.5, 0.375, 0.25, 0.125, 0.0]  # first zero at step 4, SC = 0.75
    # d = 2: steps 2, 3 -> 0.25/0.75 = 1/3, 0.125/0.75 = 1/6 ; steps 0, 1 -> 1 ; step 4 -> 0
    assert scan_normalized_labels(mc, 0.75, 4) == approx([1.0, 1.0, 1 / 3, 1 / 6, 0.0])
    # window None: every step before 4 normalised: 0.5/0.75 = 2/3, 0.375/0.75 = 0.5
    assert scan_normalized_labels(mc, 0.75, 4, window=None) == approx([2 / 3, 0.5, 1 / 3, 1 / 6, 0.0])
    # clip: 0.9/0.8 = 1.125 -> 1 ; 0.6/0.8 = 0.75
    assert scan_normalized_labels([0.9, 0.6, 0.0], 0.8, 2) == approx([1.0, 0.75, 0.0])
    # truncated after the error: steps 3.. are dropped
    assert scan_normalized_labels([1.0, 0.5, 0.0, 0.0, 0.0], 1.0, 2) == approx([1.0, 0.5, 0.0])


def test_scan_normalized_labels_edges():
    assert scan_normalized_labels([0.0, 0.0], 0.8, 0) == [0.0]  # error at the first step
    assert scan_normalized_labels([1.0, 1.0, 1.0], 0.8, -1) == [1.0, 1.0, 1.0]  # correct response
    assert scan_normalized_labels([0.0], 0.8, 0) == [0.0]  # single-step trace
    # k = 1 rollouts: MC in {0, 1}; 1/0.8 clips to 1
    assert scan_normalized_labels([1.0, 1.0, 0.0], 0.8, 2) == [1.0, 1.0, 0.0]
    with pytest.raises(InputError, match="self_conf"):
        scan_normalized_labels([0.5, 0.0], 0.0, 1)
    with pytest.raises(InputError, match="first_error"):
        scan_normalized_labels([0.5, 0.0], 0.8, 2)


def test_scan_robust_targets():
    # same labels as above, padded to 7 steps; the 2 steps after the error are masked
    targets, weights = scan_robust_targets([0.5, 0.375, 0.25, 0.125, 0.0], 0.75, 4, num_steps=7)
    assert targets == approx([1.0, 1.0, 1 / 3, 1 / 6, 0.0, 0.0, 0.0])
    assert weights == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert scan_robust_targets([], 0.9, -1, num_steps=2) == ([1.0, 1.0], [1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# PAV progress, Best-of-K prover, GenPRM relative progress (§6, §13.1)


def test_progress_hand_values():
    # Q = [Q0 .5, Q1 .75, Q2 .25, Q3 .25] -> A = [.75-.5, .25-.75, .25-.25] = [.25, -.5, 0]
    assert progress([0.5, 0.75, 0.25, 0.25]) == approx([0.25, -0.5, 0.0])
    assert progress([0.2, 0.6]) == approx([0.4])  # single step
    assert progress([0.5]) == []
    with pytest.raises(InputError, match="q_values"):
        progress([])


def test_pav_effective_reward():
    # [.8 + .5*.25, .6 + .5*(-.5)] = [.925, .35]
    assert pav_effective_reward([0.8, 0.6], [0.25, -0.5], 0.5) == approx([0.925, 0.35])
    assert pav_effective_reward([0.8], [0.25], 0.0) == approx([0.8])
    with pytest.raises(InputError, match="advantages"):
        pav_effective_reward([0.8, 0.6], [0.25], 0.5)


def test_best_of_k_q():
    assert best_of_k_q(0.5, 2) == approx(0.75)  # 1 - 0.5^2
    assert best_of_k_q(0.2, 3) == approx(0.488)  # 1 - 0.8^3 = 1 - 0.512
    assert best_of_k_q(0.3, 1) == approx(0.3)
    with pytest.raises(InputError, match="'k'"):
        best_of_k_q(0.3, 0)


def test_relative_progress():
    # ratios: .5/.5 = 1, .25/.5 = .5, 0/.25 = 0, 0/0 -> None
    q = [0.5, 0.5, 0.25, 0.0, 0.0]
    assert relative_progress(q) == [1.0, 0.5, 0.0, None]
    # eps = .8: 1 >= .8 -> 1 ; .5, 0 -> 0 ; dead prefix -> 0
    assert relative_progress_labels(q, 0.8) == [1.0, 0.0, 0.0, 0.0]
    # boundary is inclusive: .8/1 = .8 >= .8 ; x/0 with x > 0 -> inf -> 1
    assert relative_progress_labels([1.0, 0.8]) == [1.0]
    assert relative_progress([0.0, 0.25]) == [math.inf]
    assert relative_progress_labels([0.0, 0.25]) == [1.0]


# ---------------------------------------------------------------------------------------------
# ReST-MCTS* value targets (§16.1)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_rest_mcts_correct_chain_is_k_over_K(k):
    tree = [TreeNode(-1)] + [TreeNode(i) for i in range(k - 1)] + [TreeNode(k - 1, True, True)]
    assert rest_mcts_value_targets(tree) == approx([i / k for i in range(k + 1)])


def test_rest_mcts_three_step_chain_hand_values():
    # m: node3 = 1, node2 = 2, node1 = 3 ; v1 = 0 + 1/3 ; v2 = 1/3 + (2/3)/2 = 2/3 ; v3 = 2/3 + (1/3)/1 = 1
    tree = [TreeNode(-1), TreeNode(0), TreeNode(1), TreeNode(2, True, True)]
    assert rest_mcts_value_targets(tree) == approx([0.0, 1 / 3, 2 / 3, 1.0])


def test_rest_mcts_branching_hand_values():
    #        0 (root, m=3)
    #      / |      \
    #     1  5(T,x)  6 (non-terminal leaf -> None)
    #    / \
    #  2(T,ok) 3
    #           \
    #            4 (T, wrong)
    # m: 2 = 1, 1 = 2, root = 3 ; wrong path 4, 3 inherits m(1) = 2 ; 5 inherits m(root) = 3
    # v1 = 0 + 1/2 = .5 ; v2 = .5 + .5/1 = 1 ; v3 = max(0, .5 - .5/2) = .25
    # v4 = max(0, .25 - .75/2) = max(0, -.125) = 0 ; v5 = max(0, 0 - 1/3) = 0
    tree = [TreeNode(-1), TreeNode(0), TreeNode(1, True, True), TreeNode(1), TreeNode(3, True, False),
            TreeNode(0, True, False), TreeNode(0)]
    assert rest_mcts_value_targets(tree) == approx([0.0, 0.5, 1.0, 0.25, 0.0, 0.0, None])


def test_rest_mcts_two_correct_depths():
    # correct terminals at depth 1 (node1) and 3 (node4): m1 = 1, m4 = 1, m3 = 2, m2 = 3
    # v1 = 0 + 1/1 = 1 ; v2 = 1/3 ; v3 = 1/3 + (2/3)/2 = 2/3 ; v4 = 2/3 + (1/3)/1 = 1
    tree = [TreeNode(-1), TreeNode(0, True, True), TreeNode(0), TreeNode(2), TreeNode(3, True, True)]
    assert rest_mcts_value_targets(tree) == approx([0.0, 1.0, 1 / 3, 2 / 3, 1.0])


def test_rest_mcts_edges():
    assert rest_mcts_value_targets([]) == []
    assert rest_mcts_value_targets([TreeNode(-1), TreeNode(0, True, False)]) == [0.0, None]  # nothing correct
    with pytest.raises(InputError, match=r"tree\[0\]"):
        rest_mcts_value_targets([TreeNode(0)])
    with pytest.raises(InputError, match=r"tree\[1\]"):
        rest_mcts_value_targets([TreeNode(-1), TreeNode(2), TreeNode(1)])  # 1 <-> 2 cycle
    with pytest.raises(InputError, match=r"tree\[1\]"):
        rest_mcts_value_targets([TreeNode(-1), TreeNode(5)])


# ---------------------------------------------------------------------------------------------
# Qwen consensus filtering (§10.2)


def test_consensus_keep():
    assert consensus_keep(2, 2)
    assert consensus_keep(-1, -1)  # both "no error"
    assert not consensus_keep(2, 3)
    assert not consensus_keep(-1, 0)
    with pytest.raises(InputError, match="mc_first_error"):
        consensus_keep(-2, 0)
