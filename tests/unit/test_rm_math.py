"""Reward-model math: aggregation, losses, implicit-PRM step rewards, metrics, Best-of-N.

Every expected value is either worked out by hand (the arithmetic is in the comments) or computed
by an independent brute-force reference written here.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prmkit.evaluate.metrics import (
    Candidate, auroc, bon_accuracy_curve, cot_pass_at_k, count_cot_correct, ece, fit_threshold,
    majority_vote, pass_at_k, predicted_first_error, processbench_f1, select_argmax, weighted_vote,
)
from prmkit.rewards.aggregate import AGGREGATIONS, aggregate, aggregate_batch
from prmkit.rewards.implicit_math import implicit_outcome_reward, implicit_prm_rewards, q_values, step_rewards_from_tokens
from prmkit.train.losses import bce_step_loss, dpo_loss, implicit_ce_loss, orm_loss

SETTINGS = settings(max_examples=50, deadline=None)


def assert_close(t: torch.Tensor, expected) -> None:
    torch.testing.assert_close(t.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-6, atol=1e-6)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --------------------------------------------------------------------------- aggregation


def test_aggregate_by_hand():
    s = [0.9, 0.5, 0.8]
    assert aggregate(s, "min") == 0.5
    assert aggregate(s, "prod") == pytest.approx(0.36)        # 0.9 * 0.5 * 0.8
    assert aggregate(s, "last") == 0.8
    assert aggregate(s, "mean") == pytest.approx(2.2 / 3)     # (0.9 + 0.5 + 0.8) / 3
    assert aggregate(s, "sum") == pytest.approx(2.2)
    assert set(AGGREGATIONS) == {"min", "prod", "last", "mean", "sum"}


def test_aggregate_errors_name_the_choices():
    with pytest.raises(ValueError, match="last.*mean.*min.*prod"):
        aggregate([0.5], "median")
    with pytest.raises(ValueError, match="no step"):
        aggregate([], "min")
    with pytest.raises(ValueError, match="rows with no steps"):
        aggregate_batch(torch.zeros(2, 3), torch.tensor([[1, 0, 0], [0, 0, 0]]).bool(), "min")


def test_aggregate_batch_matches_list_form():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 5, generator=g, dtype=torch.float64)       # (B,S)
    lengths = [1, 2, 3, 4, 5, 3]
    mask = torch.arange(5).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # (B,S) prefix masks
    scores = scores.masked_fill(~mask, 7.0)   # padding garbage must not leak into any rule
    for how in AGGREGATIONS:
        got = aggregate_batch(scores, mask, how)
        want = [aggregate(scores[b, :n].tolist(), how) for b, n in enumerate(lengths)]
        assert got.tolist() == pytest.approx(want), how


# --------------------------------------------------------------------------- losses


def test_bce_step_loss_soft_targets_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0), 5.0]])    # p = 0.5, 0.75 (3 / (1 + 3)); third is padding
    targets = torch.tensor([[1.0, 0.25, -100.0]])        # soft target 0.25 must stay 0.25
    mask = torch.tensor([[True, True, False]])
    # step 0: -log 0.5 = log 2; step 1: -(0.25 log 0.75 + 0.75 log 0.25)
    l0 = math.log(2.0)
    l1 = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    assert bce_step_loss(logits, targets, mask).item() == pytest.approx((l0 + l1) / 2)
    assert bce_step_loss(logits, targets, mask, reduction="sum").item() == pytest.approx(l0 + l1)
    assert_close(bce_step_loss(logits, targets, mask, reduction="none"), [[l0, l1, 0.0]])
    probs = torch.sigmoid(logits)
    assert bce_step_loss(probs, targets, mask, inputs_are_probs=True).item() == pytest.approx((l0 + l1) / 2)
    # rounding 0.25 -> 0 would give -log 0.25 for step 1, a different number
    assert bce_step_loss(logits, targets.round(), mask).item() != pytest.approx((l0 + l1) / 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bce_step_loss(logits, torch.tensor([[1.5, 0.0, 0.0]]), mask)


def test_orm_loss_by_hand():
    # logit 0 -> p = 0.5, y = 1: log 2;  logit log 3 -> p = 0.75, y = 0: -log 0.25 = log 4
    got = orm_loss(torch.tensor([0.0, math.log(3.0)]), torch.tensor([1.0, 0.0]))
    assert got.item() == pytest.approx((math.log(2) + math.log(4)) / 2)


def test_dpo_loss_by_hand():
    # beta = 0.1; chosen ratio -10 - (-12) = 2; rejected ratio -8 - (-7) = -1; margin 0.1 * (2 - (-1)) = 0.3
    got = dpo_loss(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-8.0]), torch.tensor([-7.0]), 0.1)
    assert got.item() == pytest.approx(-math.log(sigmoid(0.3)))
    # swapping chosen and rejected: margin -0.3
    swapped = dpo_loss(torch.tensor([-8.0]), torch.tensor([-7.0]), torch.tensor([-10.0]), torch.tensor([-12.0]), 0.1)
    assert swapped.item() == pytest.approx(-math.log(sigmoid(-0.3)))


# Two sequences of T = 6; tokens 0-1 are prompt (masked), 2-5 response.
LOGP = torch.tensor([[-9.0, -9.0, -1.0, -2.0, -0.5, -1.5],
                     [-9.0, -9.0, -3.0, -1.0, -2.0, -4.0]], dtype=torch.float64)
REF = torch.tensor([[-1.0, -1.0, -2.0, -1.0, -1.5, -1.0],
                    [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0]], dtype=torch.float64)
MASK = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]]).bool()


def test_implicit_rewards_and_steps_by_hand():
    beta = 0.5
    tok = implicit_prm_rewards(LOGP, REF, MASK, beta)
    # row 0: log ratios on response 1, -1, 1, -0.5 -> x0.5 = 0.5, -0.5, 0.5, -0.25
    # row 1: log ratios -2, 0, -1, -3 -> -1, 0, -0.5, -1.5
    assert_close(tok, [[0, 0, 0.5, -0.5, 0.5, -0.25], [0, 0, -1.0, 0.0, -0.5, -1.5]])
    # row 0 steps end at tokens 3 and 5 (steps {2,3}, {4,5}); row 1 has three steps {2}, {3,4}, {5}
    ends = torch.tensor([[3, 5, -1], [2, 4, 5]])
    # q row 0: 0.5 - 0.5 = 0, 0 + 0.5 - 0.25 = 0.25; row 1: -1, -1 + 0 - 0.5 = -1.5, -1.5 - 1.5 = -3
    assert_close(q_values(tok, ends), [[0.0, 0.25, 0.0], [-1.0, -1.5, -3.0]])
    # step rewards = q differences: row 0: 0, 0.25; row 1: -1, -0.5, -1.5
    steps = step_rewards_from_tokens(tok, ends)
    assert_close(steps, [[0.0, 0.25, 0.0], [-1.0, -0.5, -1.5]])
    # the step rewards add up to the outcome reward r = beta * sum log ratio (0.25 and -3)
    assert steps.sum(dim=1).tolist() == pytest.approx(implicit_outcome_reward(LOGP, REF, MASK, beta).tolist())


def test_step_rewards_start_positions_exclude_prompt():
    # unmasked token rewards 1..6; response starts at token 2; steps end at 3 and 5
    tok = torch.arange(1.0, 7.0).unsqueeze(0)            # (1,6)
    ends = torch.tensor([[3, 5]])
    start = torch.tensor([2])
    # q: 3 + 4 = 7, 7 + 5 + 6 = 18; steps 7, 11  (tokens 1, 2 of the prompt are left out)
    assert q_values(tok, ends, start).tolist() == [[7.0, 18.0]]
    assert step_rewards_from_tokens(tok, ends, start).tolist() == [[7.0, 11.0]]
    with pytest.raises(ValueError, match="increasing"):
        q_values(tok, torch.tensor([[4, 3]]))
    with pytest.raises(ValueError, match="padding"):
        q_values(tok, torch.tensor([[-1, 3]]))


def test_implicit_ce_loss_by_hand():
    beta = 0.5
    # r0 = 0.5 * (1 - 1 + 1 - 0.5) = 0.25 with label 1: -log sigmoid(0.25)
    # r1 = 0.5 * (-2 + 0 - 1 - 3) = -3 with label 0: -log(1 - sigmoid(-3))
    want = (-math.log(sigmoid(0.25)) - math.log(1 - sigmoid(-3.0))) / 2
    got = implicit_ce_loss(LOGP, REF, MASK, torch.tensor([1.0, 0.0]), beta)
    assert got.item() == pytest.approx(want)


# --------------------------------------------------------------------------- ProcessBench


def test_predicted_first_error_and_f1_by_hand():
    assert predicted_first_error([0.9, 0.4, 0.2], 0.5) == 1
    assert predicted_first_error([0.9, 0.5], 0.5) == -1      # strictly below flags; 0.5 is not below 0.5
    assert predicted_first_error([], 0.5) == -1
    gold = [2, 0, 1, -1, -1, -1]
    pred = [2, 1, 1, -1, 0, -1]
    # erroneous: 2==2 yes, 1!=0, 1==1 yes -> 2/3; correct: -1, 0, -1 -> 2/3; f1 = 2 * (4/9) / (4/3) = 2/3
    out = processbench_f1(pred, gold)
    assert out["acc_error"] == pytest.approx(2 / 3)
    assert out["acc_correct"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3)
    # acc_error 1/3 (only the first), acc_correct 1: f1 = 2 * 1/3 / (4/3) = 0.5
    assert processbench_f1([2, 1, 0, -1, -1, -1], gold)["f1"] == pytest.approx(0.5)
    assert math.isnan(processbench_f1([0], [0])["f1"])    # no correct traces: undefined


def _brute_best(scores_list, gold, grid):
    best_t, best_f = None, -1.0
    for t in grid:
        f = processbench_f1([predicted_first_error(s, t) for s in scores_list], gold)["f1"]
        if f > best_f:
            best_t, best_f = t, f
    return best_t, best_f


def test_fit_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    scores_list, gold = [], []
    for _ in range(40):
        s = np.round(rng.random(int(rng.integers(1, 6))), 2).tolist()
        scores_list.append(s)
        gold.append(int(rng.integers(-1, len(s))))
    grid = np.linspace(0, 1, 21).tolist()
    t, f = fit_threshold(scores_list, gold, grid)
    bt, bf = _brute_best(scores_list, gold, grid)
    assert (t, f) == (pytest.approx(bt), pytest.approx(bf))
    # default candidates reach the optimum over a fine brute-force grid of all thresholds
    _, f_exact = fit_threshold(scores_list, gold)
    _, f_fine = _brute_best(scores_list, gold, np.linspace(-0.01, 1.01, 1021).tolist())
    assert f_exact == pytest.approx(f_fine)
    # by hand: one erroneous trace (gold 1) and one correct trace; tau in (0.3, 0.6] gets both right
    assert fit_threshold([[0.9, 0.3], [0.6, 0.8]], [1, -1], [0.2, 0.5, 0.7]) == (0.5, 1.0)
    # default candidates: 0.1 (flags nothing), midpoint 0.5 (flags 0.1), above 0.9; tau = 0.5 gets both right
    assert fit_threshold([[0.1], [0.9]], [0, -1]) == (0.5, 1.0)


# --------------------------------------------------------------------------- AUROC, ECE


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=2, max_size=30)
       .filter(lambda xs: any(y for _, y in xs) and not all(y for _, y in xs)))
def test_auroc_matches_pair_counting(pairs):
    scores = [float(s) for s, _ in pairs]          # small integer range -> many ties
    labels = [y for _, y in pairs]
    pos = [s for s, y in pairs if y]
    neg = [s for s, y in pairs if not y]
    want = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))
    assert auroc(scores, labels) == pytest.approx(want)


def test_auroc_by_hand_and_errors():
    # pos {0.8, 0.4}, neg {0.4, 0.1}: pairs 1 + 1 + 0.5 + 1 = 3.5 of 4
    assert auroc([0.8, 0.4, 0.4, 0.1], [1, 1, 0, 0]) == pytest.approx(0.875)
    with pytest.raises(ValueError, match="both classes"):
        auroc([0.1, 0.2], [1, 1])


def test_ece_by_hand():
    probs = [0.05, 0.15, 0.85, 0.95, 0.95]
    labels = [0, 0, 1, 1, 0]
    # 2 bins: [0, 0.5) holds 0.05, 0.15 (conf 0.1, acc 0) -> 2/5 * 0.1 = 0.04
    #         [0.5, 1] holds 0.85, 0.95, 0.95 (conf 2.75/3, acc 2/3) -> 3/5 * |2/3 - 2.75/3| = 3/5 * 0.25 = 0.15
    assert ece(probs, labels, n_bins=2) == pytest.approx(0.04 + 0.15)
    # 10 bins: {0.05} -> 1/5 * 0.05; {0.15} -> 1/5 * 0.15; {0.85} -> 1/5 * 0.15; {0.95, 0.95} -> 2/5 * |0.5 - 0.95|
    assert ece(probs, labels) == pytest.approx(0.01 + 0.03 + 0.03 + 0.18)
    assert ece([1.0, 1.0], [1, 1]) == 0.0           # p = 1 falls in the last bin


# --------------------------------------------------------------------------- pass@k


def test_pass_at_k_matches_enumeration():
    for n in range(1, 8):
        for c in range(n + 1):
            outcomes = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(range(n), k))
                want = sum(any(outcomes[i] for i in sub) for sub in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(want), (n, c, k)
    # large n stays finite and equals the binomial form
    assert pass_at_k(1000, 10, 100) == pytest.approx(1 - math.comb(990, 100) / math.comb(1000, 100))
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_cot_pass_at_k_counts_only_clean_chains():
    outcomes = [1.0, 1.0, 0.0, 1.0, 0.0]
    first_errors = [-1, 2, -1, -1, 0]        # sample 1: right answer through a wrong step; sample 2: wrong answer
    c_cot = count_cot_correct(outcomes, first_errors)
    assert c_cot == 2                         # samples 0 and 3
    clean = [bool(o) and fe == -1 for o, fe in zip(outcomes, first_errors)]
    subsets = list(itertools.combinations(range(5), 2))
    want = sum(any(clean[i] for i in s) for s in subsets) / len(subsets)   # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert cot_pass_at_k(5, c_cot, 2) == pytest.approx(want) == pytest.approx(0.7)
    assert cot_pass_at_k(5, c_cot, 2) < pass_at_k(5, 3, 2)
    with pytest.raises(ValueError, match="unknown"):
        count_cot_correct([1.0], [None])


# --------------------------------------------------------------------------- Best-of-N


def test_selection_rules_by_hand():
    assert select_argmax([0.2, 0.9, 0.9, 0.1]) == 1           # tie -> first index
    assert majority_vote(["3", "5", "5", "3", None, None, None]) == "3"   # 2-2 tie -> first seen; None never wins
    assert majority_vote([None, None]) is None
    answers = ["3", "5", "5", "7"]
    scores = [0.9, 0.4, 0.4, 0.85]
    # totals: "3" 0.9, "5" 0.4 + 0.4 = 0.8, "7" 0.85 -> "3"; majority would say "5"
    assert weighted_vote(answers, scores) == "3"
    assert majority_vote(answers) == "5"
    # with "5"'s scores at 0.45 each: 0.9 vs 0.9 tie -> "3" (first seen)
    assert weighted_vote(answers, [0.9, 0.45, 0.45, 0.1]) == "3"


def _pools():
    rng = np.random.default_rng(1)
    pools = []
    for _ in range(5):
        pool = []
        for _ in range(6):
            a = str(int(rng.integers(0, 3)))
            pool.append(Candidate(a, a == "0", float(np.round(rng.random(), 1))))   # coarse scores -> ties
        pools.append(pool)
    return pools


@pytest.mark.parametrize("how", ["argmax", "majority", "weighted", "oracle"])
def test_bon_curve_full_pool_equals_single_selection(how):
    pools = _pools()
    full = []
    for pool in pools:
        answers = [c.answer for c in pool]
        scores = [c.score for c in pool]
        if how == "argmax":
            full.append(pool[select_argmax(scores)].correct)
        elif how == "oracle":
            full.append(any(c.correct for c in pool))
        else:
            chosen = majority_vote(answers) if how == "majority" else weighted_vote(answers, scores)
            full.append(chosen == "0")
    curve = bon_accuracy_curve(pools, [6], how, rng=0, resamples=3)
    assert curve[6] == pytest.approx(sum(full) / len(full))


def test_bon_curve_n1_is_mean_correctness_and_validates():
    pools = _pools()
    # N = 1 with argmax picks a uniform random candidate: expected accuracy = mean fraction correct
    want = float(np.mean([np.mean([c.correct for c in p]) for p in pools]))
    got = bon_accuracy_curve(pools, [1], "argmax", rng=0, resamples=400)[1]
    assert got == pytest.approx(want, abs=0.05)
    assert bon_accuracy_curve([[("7", True, 0.1)]], [1], "argmax")[1] == 1.0   # plain tuples accepted
    with pytest.raises(ValueError, match="smallest pool"):
        bon_accuracy_curve(pools, [7], "argmax")
    with pytest.raises(ValueError, match="argmax"):
        bon_accuracy_curve(pools, [2], "best")
