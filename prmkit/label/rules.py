"""Step-label rules from the process-reward literature, as pure functions over plain lists.

Conventions (docs/methods.md): a solution has S steps, indexed 0..S-1 here.
"Prefix i" is the question plus steps 0..i.  A Monte Carlo (MC) estimate of a prefix is the
fraction of K rollouts from it that reach the gold answer.  A *first error* is a step index in
0..S-1, or -1 for "no error found".  Labels are floats in [0, 1]; `None` means "unknown, do not
train on it".

Every function cites the spec section (and the paper) its formula comes from; inputs are validated
and a bad one raises `InputError` (a ValueError) naming the field.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

from prmkit.errors import InputError
from prmkit.label.checks import check_first_error, check_int, check_prob, check_real

# ---------------------------------------------------------------------------------------------
# Math-Shepherd MC labels (Math-Shepherd, arXiv 2312.08935)


def _check_counts(correct_counts: Sequence[int], k: int) -> None:
    check_int(k, "k", 1)
    for i, c in enumerate(correct_counts):
        check_int(c, f"correct_counts[{i}]", 0, k)


def mc_hard_labels(correct_counts: Sequence[int], k: int) -> list[float]:
    """Hard estimation: step i is good (1.0) iff at least one of the K completions from prefix i
    reaches the gold answer, else 0.0.  `correct_counts[i]` = number of correct completions."""
    # Math-Shepherd (Wang et al. 2023, arXiv 2312.08935) HE: y_i = 1[∃j: a_j = a*]  — 
    _check_counts(correct_counts, k)
    return [1.0 if c > 0 else 0.0 for c in correct_counts]


def mc_soft_labels(correct_counts: Sequence[int], k: int) -> list[float]:
    """Soft estimation: step i's label is the fraction of its K completions that are correct."""
    # Math-Shepherd (Wang et al. 2023, arXiv 2312.08935) SE: y_i = (1/N) Σ_j 1[a_j = a*]  — 
    _check_counts(correct_counts, k)
    return [c / k for c in correct_counts]


def first_error_from_labels(labels: Sequence[float], threshold: float = 0.5) -> int:
    """Index of the first label strictly below `threshold`, or -1 when there is none.

    With hard labels the default 0.5 is exact.  For "first step whose MC estimate is 0" on soft
    labels (Lessons of PRMs, arXiv 2501.07301; SCAN, arXiv 2509.16548), pass any threshold in (0, 1/K], e.g. 1e-9.
    """
    check_real(threshold, "threshold")
    for i, y in enumerate(labels):
        if y is None:
            raise InputError("unknown (None) label before any label below the threshold", field=f"labels[{i}]")
        if check_real(y, f"labels[{i}]") < threshold:
            return i
    return -1


# ---------------------------------------------------------------------------------------------
# OmegaPRM binary search and tree-selection scores (OmegaPRM, arXiv 2406.06592)


def binary_search_first_error(num_steps: int, probe: Callable[[int], float], *,
                              last_known_wrong: bool = False) -> tuple[int, list[int]]:
    """Locate the first step whose prefix has MC estimate 0, with O(log S) calls to `probe`.

    `probe(i)` returns MC(prefix i) in [0, 1] (fraction of correct rollouts from the question plus
    steps 0..i).  Returns `(first_error, probes)`: the located step (or -1) and the probed indices
    in call order.

    Convention implemented (OmegaPRM, Luo et al. 2024, arXiv 2406.06592): the paper
    only binary-searches a rollout whose final answer is *wrong*, so the full prefix is known to be
    dead.  Here the full prefix is checked first: `probe(S-1) > 0` means no error is found and -1
    is returned after that single probe.  Pass `last_known_wrong=True` when the caller already
    knows the final answer is wrong (a complete solution's MC is its own correctness); that probe
    is then skipped.  Probe count <= ceil(log2 S) + 1 (<= ceil(log2 S) with `last_known_wrong`).

    OmegaPRM assumes MC is monotone along the prefix (once 0, it stays 0).  Without monotonicity
    the result is still a probed transition: MC(first_error) == 0 and, if first_error > 0,
    MC(first_error - 1) > 0 was probed as well — but not necessarily the *first* zero.
    """
    check_int(num_steps, "num_steps", 1)
    probes: list[int] = []

    def mc(i: int) -> float:
        probes.append(i)
        return check_prob(probe(i), f"probe({i})")

    hi = num_steps - 1  # invariant: MC(prefix hi) == 0
    if not last_known_wrong and mc(hi) > 0:
        return -1, probes
    lo = 0  # invariant: lo == 0 or MC(prefix lo-1) > 0
    # OmegaPRM, arXiv 2406.06592 loop: MC(s_mid) > 0 -> first error is later; else it is at or before mid
    while lo < hi:
        mid = (lo + hi) // 2
        if mc(mid) > 0:
            lo = mid + 1
        else:
            hi = mid
    return hi, probes


def omega_labels(num_steps: int, first_error: int) -> list[float | None]:
    """Labels from a located first error: steps before it 1.0, the error 0.0, steps after None
    (unknown: a later step after a dead prefix is neither confirmed good nor bad).  -1 -> all 1.0."""
    # OmegaPRM (arXiv 2406.06592) : steps before the first MC=0 prefix are positives
    check_int(num_steps, "num_steps", 0)
    check_first_error(first_error, num_steps)
    if first_error == -1:
        return [1.0] * num_steps
    return [1.0] * first_error + [0.0] + [None] * (num_steps - first_error - 1)


def omega_q_value(mc: float, length: float, alpha: float = 0.5, beta: float = 0.9, L: float = 500.0) -> float:
    """Rollout value Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L); defaults are the paper's."""
    # OmegaPRM (arXiv 2406.06592) : Q(s,r) = α^{1−MC(s)} · β^{len(r)/L}  — / [mem]
    check_prob(mc, "mc")
    check_real(length, "length", 0.0)
    check_real(alpha, "alpha", 0.0)
    check_real(beta, "beta", 0.0)
    if check_real(L, "L") <= 0:
        raise InputError(f"expected L > 0, got {L}", field="L")
    return alpha ** (1.0 - mc) * beta ** (length / L)


def omega_u_value(c_puct: float, total_visits: int, visits: int) -> float:
    """Exploration bonus U(s) = c_puct * sqrt(Σ_i N(s_i)) / (1 + N(s)).

    NB: in OmegaPRM the sum runs over *all* nodes of the tree (OmegaPRM, arXiv 2406.06592), not over the parent's
    children as in AlphaZero's PUCT; pass that total as `total_visits`.
    """
    # OmegaPRM (arXiv 2406.06592) : U(s) = c_puct · sqrt(Σ_i N(s_i)) / (1 + N(s))
    check_real(c_puct, "c_puct", 0.0)
    check_int(total_visits, "total_visits", 0)
    check_int(visits, "visits", 0)
    return c_puct * math.sqrt(total_visits) / (1 + visits)


def omega_select_score(mc: float, length: float, visits: int, total_visits: int, *, alpha: float = 0.5,
                       beta: float = 0.9, L: float = 500.0, c_puct: float = 0.125) -> float:
    """Selection score of a (state, rollout) pool entry: Q(s, r) + U(s); the pool's argmax is
    binary-searched next.  Defaults: c_puct 0.125, alpha 0.5, beta 0.9, L 500 (OmegaPRM, arXiv 2406.06592 [mem])."""
    # OmegaPRM (arXiv 2406.06592) : (s*, r*) = argmax Q(s,r) + U(s)
    return omega_q_value(mc, length, alpha, beta, L) + omega_u_value(c_puct, total_visits, visits)


# ---------------------------------------------------------------------------------------------
# SCAN self-confidence and noise-tolerant labels (SCAN, arXiv 2509.16548)


def self_confidence(correct: int, total: int) -> float:
    """SC(q) = (1/N) Σ_j J(r_j, a): the annotator's own accuracy on the question."""
    # SCAN (Ding et al. 2025, arXiv 2509.16548) self-confidence  — 
    check_int(total, "total", 1)
    check_int(correct, "correct", 0, total)
    return correct / total


def scan_keep_question(self_conf: float, min_self_conf: float = 0.75) -> bool:
    """SCAN keeps a question for synthesis only when SC >= 0.75 (SCAN, arXiv 2509.16548, [code])."""
    return check_prob(self_conf, "self_conf") >= check_prob(min_self_conf, "min_self_conf")


def scan_normalized_labels(mc_values: Sequence[float], self_conf: float, first_error: int,
                           window: int | None = 2) -> list[float]:
    """SCAN's noise-tolerant labels for one response, truncated after the first error.

    For an incorrect response with MC first error t (MC accuracies c_0..c_t, c_t = 0):
    the `window` steps just before t get the soft label min(1, c_i / SC), earlier steps 1.0, the
    error step 0.0; steps after t are dropped (SCAN truncates the solution), so the result has
    t + 1 entries.  `window=None` normalises every step before t.  `first_error == -1` is a
    correct response: every step is 1.0 (SCAN does no rollouts for those, `mc_values` is only
    used for its length).  SCAN drops incorrect responses whose MC never reaches 0; that choice is
    the caller's.

    The spec writes the rule as ŷ_t = min(c_t/SC, 1) if t_pred − t ≤ d else 1[c_t > 0]; the
    official code (dataset/SCAN-*/process.py) sets the error step to 0 and earlier steps to the
    constant 1 — identical when `first_error` is the first zero of `mc_values`.
    """
    # SCAN (arXiv 2509.16548) robust learning, d = 2 in the code  — 
    sc = check_prob(self_conf, "self_conf")
    if sc == 0:
        raise InputError("self-confidence 0 cannot normalise MC values (SCAN keeps SC >= 0.75)", field="self_conf")
    if window is not None:
        check_int(window, "window", 0)
    check_first_error(first_error, len(mc_values))
    if first_error == -1:
        return [1.0] * len(mc_values)
    labels = [1.0] * first_error + [0.0]
    start = 0 if window is None else max(0, first_error - window)
    for i in range(start, first_error):
        labels[i] = min(1.0, check_prob(mc_values[i], f"mc_values[{i}]") / sc)
    return labels


def scan_robust_targets(mc_values: Sequence[float], self_conf: float, first_error: int, num_steps: int,
                        window: int | None = 2) -> tuple[list[float], list[float]]:
    """`scan_normalized_labels` padded to `num_steps` for batched BCE: (targets, weights) with
    weight 1.0 on the kept steps and 0.0 (masked) on the steps after the error.  SCAN's loss is
    plain BCE on these soft targets, BCELoss(sigmoid(logit), target) (SCAN, arXiv 2509.16548, [code])."""
    # SCAN (arXiv 2509.16548) robust learning target + truncation mask  — 
    check_int(num_steps, "num_steps", 1)
    if len(mc_values) > num_steps:
        raise InputError(f"{len(mc_values)} MC values for {num_steps} steps", field="mc_values")
    if first_error == -1:  # correct response: every step is a positive (no rollouts, SCAN, arXiv 2509.16548 step 3)
        return [1.0] * num_steps, [1.0] * num_steps
    kept = scan_normalized_labels(mc_values, self_conf, first_error, window)
    pad = num_steps - len(kept)
    return kept + [0.0] * pad, [1.0] * len(kept) + [0.0] * pad


# ---------------------------------------------------------------------------------------------
# PAV progress and GenPRM relative progress (PAV, arXiv 2410.08146, GenPRM, arXiv 2504.00891)
#
# `q_values` = [Q_0, Q_1, ..., Q_S]: Q_0 is the success probability from the empty prefix (the
# question alone), Q_k from the prefix ending at step k (1-based here because of Q_0).


def _check_q_values(q_values: Sequence[float]) -> list[float]:
    if len(q_values) < 1:
        raise InputError("expected [Q_0, Q_1, ..., Q_S] with Q_0 for the empty prefix", field="q_values")
    return [check_prob(q, f"q_values[{i}]") for i, q in enumerate(q_values)]


def progress(q_values: Sequence[float]) -> list[float]:
    """Per-step progress (process advantage) A_k = Q_k - Q_{k-1}, k = 1..S; S values.
    For PAV, Q is the *prover* μ's success probability (PAV, arXiv 2410.08146)."""
    # PAV (Setlur et al. 2024, arXiv 2410.08146): A^μ(s_h,a_h) = Q^μ(s_h,a_h) − V^μ(s_h)  — 
    q = _check_q_values(q_values)
    return [q[k] - q[k - 1] for k in range(1, len(q))]


def pav_effective_reward(q_values: Sequence[float], advantages: Sequence[float], alpha: float) -> list[float]:
    """Per-step effective reward Q^π(s_h, a_h) + alpha * A^μ(s_h, a_h).

    `q_values` here are the base policy's per-step Q^π (one per step, no Q_0), `advantages` the
    prover's progress (`progress(prover_q_values)`).  Used both for beam-search scoring and as
    the dense RL reward (PAV, arXiv 2410.08146); alpha is tuned per model [mem: values not in the spec].
    """
    # PAV (arXiv 2410.08146): effective reward Q^π + α·A^μ  — 
    check_real(alpha, "alpha")
    if len(q_values) != len(advantages):
        raise InputError(f"{len(q_values)} Q values but {len(advantages)} advantages", field="advantages")
    return [check_prob(q, f"q_values[{i}]") + alpha * check_real(a, f"advantages[{i}]", -1.0, 1.0)
            for i, (q, a) in enumerate(zip(q_values, advantages))]


def best_of_k_q(q: float, k: int) -> float:
    """Success probability of the Best-of-K(π) prover: 1 - (1 - Q^π)^K."""
    # PAV (arXiv 2410.08146): Q^{BoK(π)}(s,a) = 1 − (1 − Q^π(s,a))^K  — 
    check_int(k, "k", 1)
    return 1.0 - (1.0 - check_prob(q, "q")) ** k


def relative_progress(q_values: Sequence[float]) -> list[float | None]:
    """GenPRM relative progress P_t = MC(s_t, a_t) / MC(s_t) = Q_t / Q_{t-1}, t = 1..S (a ratio).

    Undefined denominators (MC of the previous prefix is 0, where the paper gives no rule): 0/0
    -> None (both prefixes dead; no progress measurable) and x/0 with x > 0 -> +inf (a noisy
    estimate revived a dead prefix).
    """
    # GenPRM (Zhao et al. 2025, arXiv 2504.00891) RPE: P_t = MC(s_t,a_t) / MC(s_t)  — 
    q = _check_q_values(q_values)
    out: list[float | None] = []
    for k in range(1, len(q)):
        if q[k - 1] > 0:
            out.append(q[k] / q[k - 1])
        else:
            out.append(math.inf if q[k] > 0 else None)
    return out


def relative_progress_labels(q_values: Sequence[float], eps: float = 0.8) -> list[float]:
    """GenPRM RPE *binary* labels r̂_t = 1[P_t >= eps] (GenPRM, arXiv 2504.00891: the label is binary, not the
    ratio).  eps = 0.8 is the paper's value per the spec [mem].  A step after a dead prefix
    (0/0, see `relative_progress`) is labelled 0.0, as hard MC labels treat MC = 0 (Lessons of PRMs, arXiv 2501.07301)."""
    # GenPRM (arXiv 2504.00891) RPE label: r̂_t = 1 if P_t ≥ ε else 0  — 
    e = check_real(eps, "eps", 0.0)
    return [0.0 if p is None else (1.0 if p >= e else 0.0) for p in relative_progress(q_values)]


# ---------------------------------------------------------------------------------------------
# ReST-MCTS* value targets (ReST-MCTS*, arXiv 2406.03816)


class TreeNode(NamedTuple):
    """One search-tree node = one reasoning step.  `parent` is -1 for the root (empty prefix)."""

    parent: int
    is_terminal: bool = False
    is_correct: bool = False  # only read on terminal nodes


def rest_mcts_value_targets(tree: Sequence[TreeNode]) -> list[float | None]:
    """Process-value targets v for every node of a finished ReST-MCTS* tree (ReST-MCTS*, arXiv 2406.03816, [code]).

    `tree[0]` is the root (parent -1); any object with `parent`, `is_terminal`, `is_correct`
    attributes works.  Steps:
      1. m = 1 on correct terminals; every ancestor gets m = 1 + min(m of children) and is "on a
         correct path" (r = 0).
      2. Nodes on the path from a wrong terminal up to its nearest ancestor with a correct
         descendant inherit that ancestor's m (r = 1).
      3. Top-down: v_root = 0; v = max(0, v_parent + w), w = (1 - v_parent) / m · (+1 | -1).
         (Paper form: w = (1 − v_{k−1})/(m_k + 1)·(1 − 2 r_k), code m = paper m_k + 1.)
    Nodes that receive no m (no correct terminal below their nearest labelled ancestor, or
    non-terminal leaves off any terminal path) get None: the official code emits no sample for
    them.  The root gets v_0 = 0.0, although the code emits no sample for the empty prefix.
    On a K-step correct path v_k = k/K.
    """
    # ReST-MCTS* (Zhang et al. 2024, arXiv 2406.03816) MCTS/base.py get_full_value_samples_vm
    n = len(tree)
    if n == 0:
        return []
    children, order = _tree_order(tree)
    m, on_correct = _steps_to_correct(tree, children, order)
    v: list[float | None] = [None] * n
    v[0] = 0.0
    for i in order[1:]:
        vp = v[tree[i].parent]
        if vp is None or m[i] == math.inf:
            continue
        sign = 1.0 if on_correct[i] else -1.0
        v[i] = max(0.0, vp + (1.0 - vp) / m[i] * sign)
    return v


def _tree_order(tree: Sequence[TreeNode]) -> tuple[list[list[int]], list[int]]:
    """Each node's children and a breadth-first order (parents before children); InputError for a
    root that is not tree[0], a bad parent index, or a cycle."""
    n = len(tree)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, node in enumerate(tree):
        p = node.parent
        if i == 0:
            if p != -1:
                raise InputError(f"the root must be tree[0] with parent -1, got {p!r}", field="tree[0].parent")
            continue
        check_int(p, f"tree[{i}].parent", 0, n - 1)
        if p == i:
            raise InputError("a node cannot be its own parent", field=f"tree[{i}].parent")
        children[p].append(i)
    order, seen = [0], {0}
    for i in order:
        for c in children[i]:
            if c in seen:
                raise InputError("the parent links form a cycle", field=f"tree[{c}].parent")
            seen.add(c)
            order.append(c)
    if len(order) != n:
        bad = min(set(range(n)) - seen)
        raise InputError("node not reachable from the root (cycle)", field=f"tree[{bad}].parent")
    return children, order


def _steps_to_correct(tree: Sequence[TreeNode], children: list[list[int]], order: list[int]) -> tuple[list, list]:
    """Steps 1-2 of `rest_mcts_value_targets`: m per node (inf where none) and whether it is on a correct path."""
    inf = math.inf
    m = [inf] * len(tree)
    on_correct = [False] * len(tree)
    for i in reversed(order):  # children before parents
        if i != 0 and tree[i].is_terminal and tree[i].is_correct:
            m[i], on_correct[i] = 1, True
        elif children[i]:
            best = min(m[c] for c in children[i])
            if best < inf:
                m[i], on_correct[i] = best + 1, True
    for i in order:  # wrong terminals inherit m from the nearest ancestor with a correct descendant
        if i == 0 or not tree[i].is_terminal or on_correct[i]:
            continue
        path, a = [], i
        while a != -1 and not on_correct[a]:
            path.append(a)
            a = tree[a].parent
        if a != -1:
            for j in path:
                m[j] = m[a]
    return m, on_correct


# ---------------------------------------------------------------------------------------------
# Qwen "Lessons" consensus filtering (Lessons of PRMs, arXiv 2501.07301)


def consensus_keep(mc_first_error: int, judge_first_error: int) -> bool:
    """Keep a response only when the MC-based and the LLM-judge first-error locations agree
    (both -1, "no error", counts as agreement)."""
    # Qwen "Lessons" (Zhang et al. 2025, arXiv 2501.07301) consensus filtering  — 
    check_int(mc_first_error, "mc_first_error", -1)
    check_int(judge_first_error, "judge_first_error", -1)
    return mc_first_error == judge_first_error
