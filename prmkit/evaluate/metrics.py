"""Pure metrics for process rewards: ProcessBench first-error F1, AUROC, ECE, pass@k, Best-of-N.

All functions take plain Python lists (or anything numpy can read) and return Python numbers;
rates are fractions in [0, 1], not percentages. Conventions fixed here once:

* first-error indices are 0-based step indices, -1 = "no erroneous step" (ProcessBench `label`);
* a step is flagged when its score is strictly below the threshold (ProcessBench, arXiv 2412.06559);
* every selection rule breaks ties towards the candidate / answer that comes first in the input
  order, so results never depend on hash order or on the random generator.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Callable, NamedTuple, Sequence

import numpy as np

# --------------------------------------------------------------------------- ProcessBench (ProcessBench, arXiv 2412.06559)


def predicted_first_error(step_scores: Sequence[float], threshold: float) -> int:
    """Index of the first step whose score is < threshold, else -1 (Zheng et al. 2412.06559)."""
    for k, s in enumerate(step_scores):
        if s < threshold:
            return k
    return -1


def processbench_f1(pred_first_errors: Sequence[int], gold_first_errors: Sequence[int]) -> dict[str, float]:
    """ProcessBench metric (Zheng et al. 2412.06559).

    acc_error = mean(pred == gold | gold != -1) (exact first-error match on erroneous traces),
    acc_correct = mean(pred == -1 | gold == -1), f1 = 2 * acc_error * acc_correct / (acc_error + acc_correct).
    A side with no traces has accuracy nan and then f1 is nan; f1 = 0 when both accuracies are 0.
    """
    if len(pred_first_errors) != len(gold_first_errors):
        raise ValueError(f"pred_first_errors has {len(pred_first_errors)} items, gold_first_errors "
                         f"{len(gold_first_errors)}; expected one prediction per trace")
    err = [p == g for p, g in zip(pred_first_errors, gold_first_errors) if g != -1]
    cor = [p == -1 for p, g in zip(pred_first_errors, gold_first_errors) if g == -1]
    acc_error = sum(err) / len(err) if err else float("nan")
    acc_correct = sum(cor) / len(cor) if cor else float("nan")
    return {"acc_error": acc_error, "acc_correct": acc_correct, "f1": _harmonic(acc_error, acc_correct)}


def _harmonic(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return float("nan")
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def fit_threshold(step_scores_list: Sequence[Sequence[float]], gold_first_errors: Sequence[int],
                  grid: Sequence[float] | None = None) -> tuple[float, float]:
    """Threshold maximising ProcessBench F1 on a fitting split; returns (threshold, F1 on that split).

    Fit on a split you do not report (ProcessBench, arXiv 2412.06559, docs/methods.md; ImplicitPRM fits on GSM8K and reuses τ).
    `grid` = candidate thresholds; None = the smallest step score, the midpoints between consecutive
    distinct step scores, and one just above the largest (one candidate per distinct prediction
    pattern, so the exact optimum over all real thresholds). Ties in F1 go to the smallest candidate.

    Vectorised: with m_k = min(s_0..s_k), trace with gold g is scored right iff s_g < τ <= m_{g-1}
    (m_{-1} = +inf); a trace with gold -1 iff τ <= m_{S-1} (+inf for a trace with no steps).
    """
    if len(step_scores_list) != len(gold_first_errors):
        raise ValueError(f"{len(step_scores_list)} score lists but {len(gold_first_errors)} gold labels")
    lo, hi, is_err = [], [], []   # trace right iff lo < τ <= hi
    for i, (scores, g) in enumerate(zip(step_scores_list, gold_first_errors)):
        if not -1 <= g < len(scores):
            raise ValueError(f"trace {i}: gold first error {g} is not -1 or a step index < {len(scores)}")
        prefix_min = np.minimum.accumulate(np.asarray(scores, dtype=float)) if len(scores) else np.array([])
        if g == -1:
            lo.append(-np.inf)
            hi.append(prefix_min[-1] if len(scores) else np.inf)
        else:
            lo.append(float(scores[g]))
            hi.append(prefix_min[g - 1] if g > 0 else np.inf)
        is_err.append(g != -1)
    is_err_arr = np.asarray(is_err, dtype=bool)                                  # (n,)
    if is_err_arr.all() or not is_err_arr.any():
        raise ValueError("fit_threshold needs both erroneous (gold >= 0) and correct (gold = -1) traces")
    if grid is None:
        u = np.unique(np.concatenate([np.asarray(s, dtype=float) for s in step_scores_list if len(s)]))  # (U,)
        # one threshold per distinct prediction pattern: u_0 flags nothing; midpoints flag s <= u_j;
        # just above u_max flags every step. Midpoints keep τ off the fitted scores themselves.
        cand = np.concatenate([u[:1], (u[:-1] + u[1:]) / 2, [np.nextafter(u[-1], np.inf)]])  # (U+1,)
    else:
        cand = np.sort(np.unique(np.asarray(grid, dtype=float)))                # (G,)
        if cand.size == 0:
            raise ValueError("fit_threshold: empty grid")
    right = (np.asarray(lo)[:, None] < cand[None, :]) & (cand[None, :] <= np.asarray(hi)[:, None])  # (n,G)
    acc_e = right[is_err_arr].mean(axis=0)                                       # (G,)
    acc_c = right[~is_err_arr].mean(axis=0)                                      # (G,)
    denom = acc_e + acc_c
    f1 = np.where(denom > 0, 2 * acc_e * acc_c / np.where(denom > 0, denom, 1.0), 0.0)  # (G,)
    best = int(np.argmax(f1))                                                    # first max = smallest τ
    return float(cand[best]), float(f1[best])


# --------------------------------------------------------------------------- ranking and calibration


def auroc(scores: Sequence[float], labels: Sequence[bool | int]) -> float:
    """Area under the ROC curve = P(score_pos > score_neg) + 0.5 P(tie) (Mann–Whitney U / (n_pos n_neg)).

    Computed from mid-ranks: (sum of positive ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg).
    Raises ValueError when one class is absent (the AUROC is undefined).
    """
    s = np.asarray(scores, dtype=float)                                          # (n,)
    y = np.asarray(labels).astype(bool)                                          # (n,)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of one length, got {s.shape} and {y.shape}")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes; got {n_pos} positive and {n_neg} negative labels")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # mid-ranks (1-based): tied values share the average of the ranks they span
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0                                             # (U,)
    ranks = np.empty_like(s)
    ranks[order] = np.repeat(mid, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def ece(probs: Sequence[float], labels: Sequence[bool | int | float], n_bins: int = 10) -> float:
    """Expected calibration error, equal-width bins: sum_b |B_b|/n * |acc_b - conf_b| (Guo et al. 1706.04599).

    Bin b = [b/n_bins, (b+1)/n_bins) with the last bin closed (p = 1 falls in it): index
    min(floor(p * n_bins), n_bins - 1). acc_b = mean label, conf_b = mean probability in the bin.
    """
    p = np.asarray(probs, dtype=float)                                           # (n,)
    y = np.asarray(labels, dtype=float)                                          # (n,)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"probs and labels must be non-empty 1-D of one length, got {p.shape} and {y.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probs must lie in [0, 1]")
    idx = np.minimum(np.floor(p * n_bins).astype(int), n_bins - 1)               # (n,)
    total = 0.0
    for b in np.unique(idx):
        in_b = idx == b
        total += in_b.sum() / p.size * abs(y[in_b].mean() - p[in_b].mean())
    return float(total)


# --------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i).

    Chen et al. 2107.03374 (Codex); docs/methods.md. n samples of which c are correct; the product form
    avoids huge binomials.
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0   # every k-subset contains a correct sample
    return float(1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1)))


def cot_pass_at_k(n: int, c_cot: int, k: int) -> float:
    """CoT-pass@k: the pass@k estimator where a sample counts only if its answer is right AND no step is wrong.

    c_cot = number of such samples (see `count_cot_correct`); always <= the plain pass@k count.
    """
    return pass_at_k(n, c_cot, k)


def count_cot_correct(outcomes: Sequence[bool | float], first_errors: Sequence[int | None]) -> int:
    """Samples whose answer is right (outcome truthy) and whose first error is -1; None = unknown -> error."""
    if len(outcomes) != len(first_errors):
        raise ValueError(f"{len(outcomes)} outcomes but {len(first_errors)} first errors")
    for i, fe in enumerate(first_errors):
        if fe is None:
            raise ValueError(f"sample {i}: first error unknown (None); CoT-pass@k needs step-level labels")
    return sum(1 for o, fe in zip(outcomes, first_errors) if bool(o) and fe == -1)


# --------------------------------------------------------------------------- Best-of-N (docs/methods.md, search-and-learn; Snell et al., arXiv 2408.03314)


class Candidate(NamedTuple):
    """One sampled response of a problem's pool: canonical answer (None = none parsed), graded, scored."""

    answer: Hashable | None
    correct: bool
    score: float      # aggregated response score (see prmkit.rewards.aggregate)


def select_argmax(scores: Sequence[float]) -> int:
    """Vanilla BoN: index of the highest score; ties -> the first such index (docs/methods.md)."""
    if len(scores) == 0:
        raise ValueError("select_argmax over no candidates")
    best = 0
    for i, s in enumerate(scores):
        if s > scores[best]:
            best = i
    return best


def group_answers(answers: Sequence[Hashable | None],
                  equivalent: Callable[[Hashable, Hashable], bool] | None = None) -> list[int | None]:
    """Group index of each answer (0, 1, ... in order of first occurrence); None answers get None.

    `equivalent(a, b)` says whether two answers are the same answer (the task grader's equivalence,
    e.g. math-verify for MATH, so `\\frac{1}{2}`, `\\dfrac{1}{2}` and `0.5` form one group); None =
    plain equality. Each answer joins the first earlier group whose first member (its
    representative) it is equivalent to, `equivalent(representative, answer)`; equal answers always
    share a group without calling `equivalent`. With equality this is one group per distinct answer.
    """
    reps: list[Hashable] = []          # representative (first member) of each group
    seen: dict[Hashable, int] = {}     # answer -> its group, so equal answers are compared once
    out: list[int | None] = []
    for a in answers:
        if a is None:
            out.append(None)
            continue
        if a not in seen:
            match = None
            if equivalent is not None:
                match = next((g for g, r in enumerate(reps) if equivalent(r, a)), None)
            if match is None:
                reps.append(a)
                match = len(reps) - 1
            seen[a] = match
        out.append(seen[a])
    return out


def majority_vote(answers: Sequence[Hashable | None],
                  equivalent: Callable[[Hashable, Hashable], bool] | None = None) -> Hashable | None:
    """Most frequent answer (self-consistency; docs/methods.md); None answers do not vote.

    Ties -> the tied answer whose first occurrence comes first; all None (or empty) -> None.
    `equivalent` groups answers as `group_answers` does (None = exact equality); the winner is
    its group's first answer.
    """
    return weighted_vote(answers, [1.0] * len(answers), equivalent)


def weighted_vote(answers: Sequence[Hashable | None], scores: Sequence[float],
                  equivalent: Callable[[Hashable, Hashable], bool] | None = None) -> Hashable | None:
    """Weighted BoN: argmax_a sum_i 1[ans_i = a] * score_i (docs/methods.md).

    As search-and-learn's `find_answer_with_largest_sum`.
    Scores are summed as given: pass sigmoid(score) for unbounded implicit-PRM scores, as
    ImplicitPRM does. None answers do not vote; ties -> the tied answer whose first occurrence
    comes first; no voting answer -> None. With `equivalent`, "ans_i = a" means "in a's group"
    (`group_answers`) and the winner is its group's first answer.
    """
    if len(answers) != len(scores):
        raise ValueError(f"{len(answers)} answers but {len(scores)} scores")
    if equivalent is not None:
        ids = group_answers(answers, equivalent)
        won = weighted_vote(ids, scores)
        return None if won is None else answers[ids.index(won)]
    totals: dict[Hashable, float] = {}    # insertion order = order of first occurrence
    for a, s in zip(answers, scores):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + float(s)
    best = None
    for a, t in totals.items():
        if best is None or t > totals[best]:
            best = a
    return best


def _answer_correct(cands: Sequence[Candidate], answer: Hashable | None) -> bool:
    # the chosen answer is right iff its first candidate is graded right (equal canonical answers grade alike)
    if answer is None:
        return False
    return bool(next(c.correct for c in cands if c.answer == answer))


# how -> fn(candidates in pool order) -> is the selection correct
BON_RULES: dict[str, Callable[[Sequence[Candidate]], bool]] = {
    "argmax": lambda cs: bool(cs[select_argmax([c.score for c in cs])].correct),
    "majority": lambda cs: _answer_correct(cs, majority_vote([c.answer for c in cs])),
    "weighted": lambda cs: _answer_correct(cs, weighted_vote([c.answer for c in cs], [c.score for c in cs])),
    "oracle": lambda cs: any(bool(c.correct) for c in cs),   # pass@N upper bound
}


def bon_accuracy_curve(groups: Sequence[Sequence[Candidate | tuple]], ns: Sequence[int], how: str,
                       rng: np.random.Generator | int | None = 0, resamples: int = 100,
                       equivalent: Callable[[Hashable, Hashable], bool] | None = None) -> dict[int, float]:
    """Best-of-N accuracy for each N: mean over problems of the mean over `resamples` random size-N subsets.

    groups: one pool per problem, each candidate (answer, correct, score). A subset keeps pool order
    (sorted indices), so tie-breaking is "first in the pool" and N = pool size reproduces the
    full-pool selection exactly (evaluated once, no resampling). how in BON_RULES
    (argmax, majority, weighted, oracle). Every N must be <= every pool size.
    `equivalent` (the task's answer equivalence; None = exact equality) partitions each whole pool
    once (`group_answers`); every subset then votes over that partition.
    """
    if how not in BON_RULES:
        raise ValueError(f"unknown selection rule {how!r}; expected one of {sorted(BON_RULES)}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rule = BON_RULES[how]
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pools = [[Candidate(*c) for c in g] for g in groups]
    if equivalent is not None:
        pools = [[c._replace(answer=gid) for c, gid in zip(p, group_answers([c.answer for c in p], equivalent))]
                 for p in pools]
    if not pools:
        raise ValueError("bon_accuracy_curve over no problems")
    smallest = min(len(p) for p in pools)
    curve: dict[int, float] = {}
    for n in ns:
        if not 1 <= n <= smallest:
            raise ValueError(f"N = {n} must be in [1, smallest pool size = {smallest}]")
        per_problem = []
        for pool in pools:
            if n == len(pool):
                per_problem.append(float(rule(pool)))
                continue
            hits = 0
            for _ in range(resamples):
                idx = np.sort(gen.choice(len(pool), size=n, replace=False))
                hits += rule([pool[i] for i in idx])
            per_problem.append(hits / resamples)
        curve[int(n)] = float(np.mean(per_problem))
    return curve
