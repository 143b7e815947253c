"""Prompt filters for any RL method: PRIME's accuracy filter, and the refill sampler that keeps
drawing prompts until the batch holds exactly the requested number of prompts that pass.

PRIME (Cui et al., arXiv 2502.01456) keeps only prompts whose group accuracy lies in [0.2, 0.8]; its
reference trainer oversamples (verl's recipe: 4x the batch) and keeps sampling until the filtered batch
is full, so every policy step sees the same number of prompts. `drop` mode (prmkit's first PRIME) keeps
the rows that pass and trains on fewer.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from prmkit.errors import InputError

FILTER_MODES = ("refill", "drop")


def group_accuracy(outcomes: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean outcome of each row's group, per row (B,) float64."""
    _, index = torch.unique(groups, return_inverse=True)  # (B,)
    n = int(index.max()) + 1 if len(index) else 0
    total = torch.zeros(n, dtype=torch.float64).index_add_(0, index, outcomes.double())  # (G,)
    count = torch.zeros(n, dtype=torch.float64).index_add_(0, index, torch.ones_like(outcomes, dtype=torch.float64))
    return (total / count)[index]  # (B,)


def passes_filter(accuracy: float, lower: float, upper: float) -> bool:
    """Inclusive bounds as PRIME's code (with K=4 and 0.2/0.8 it keeps accuracies 0.25, 0.5, 0.75)."""
    eps = 1e-9
    return lower - eps <= accuracy <= upper + eps


def accuracy_filter(outcomes: torch.Tensor, groups: torch.Tensor, lower: float = 0.2,
                    upper: float = 0.8) -> torch.Tensor:
    """Rows whose prompt's accuracy (mean outcome of its group) lies in [lower, upper] -> (B,) bool."""
    # Cui et al. 2025 (arXiv 2502.01456), PRIME accuracy filter; the code uses inclusive bounds
    acc = group_accuracy(outcomes, groups)  # (B,)
    eps = 1e-9
    return (acc >= lower - eps) & (acc <= upper + eps)  # (B,)


@dataclass
class Refill:
    """Result of `refill_draws`: stream positions of the kept prompts (draw order), and the cost."""

    kept: list[int]
    """stream positions of the prompts in the batch: the first `need` that pass, then (only when the
    stream or the round limit ran out) the first failing ones, so the batch keeps its size"""
    passed: list[bool]
    """for each kept position, whether it passed the filter"""
    drawn: int = 0
    """prompts sampled in all (kept and discarded)"""
    rounds: int = 0
    results: dict = field(default_factory=dict)
    """stream position -> what `sample_round` returned for it (the kept ones are used for the batch)"""


def refill_draws(sample_round: Callable[[list[int]], Sequence[tuple[bool, object]]], need: int, stream_len: int,
                 oversample: float = 4.0, max_rounds: int = 8) -> Refill:
    """Draw stream positions 0, 1, 2, ... in rounds until `need` of them pass the filter.

    Each round samples the next ceil(oversample * still_needed) positions through `sample_round`
    (positions -> [(passes, payload)] in the same order). The kept positions are the first `need`
    passing ones in stream order, so the batch does not depend on the round size when each position's
    samples are seeded by the position alone. When the stream or `max_rounds` runs out first, the
    batch is topped up with the earliest failing positions (marked passed=False: the filter drops them).
    """
    if need < 1 or oversample < 1.0 or max_rounds < 1:
        raise InputError(f"refill needs need >= 1, oversample >= 1 and max_rounds >= 1, got {need}, "
                         f"{oversample}, {max_rounds}", field="refill_oversample")
    out = Refill(kept=[], passed=[])
    passing: list[int] = []
    pos = 0
    while len(passing) < need and pos < stream_len and out.rounds < max_rounds:
        n = min(math.ceil(oversample * (need - len(passing))), stream_len - pos)
        positions = list(range(pos, pos + n))
        for p, (ok, payload) in zip(positions, sample_round(positions)):
            out.results[p] = payload
            if ok:
                passing.append(p)
        pos += n
        out.rounds += 1
    out.drawn = pos
    kept = passing[:need]
    passing_set = set(passing)
    failing = [p for p in range(pos) if p not in passing_set][:need - len(kept)]
    kept_set = set(kept)
    out.kept = sorted(kept + failing)
    out.passed = [p in kept_set for p in out.kept]
    return out


def prompt_stream(pool_size: int, seed: int) -> list[int]:
    """A seeded permutation of the training pool: the order in which refill draws prompts."""
    order = list(range(pool_size))
    random.Random(seed).shuffle(order)
    return order


def refill_rollout_groups(run, step: int, seed_for: Callable[..., int]):
    """Sample this step's prompts with refill for an `RLRun`: returns (problems, completion groups, info).

    Prompt order comes from `prompt_stream(seed_for(seed, step, 6))`; the samples of stream position i
    use seed `seed_for(seed, step, 7, i)`, so the batch is the same whatever the oversampling factor.
    """
    from prmkit.policy.sample import completion_to_trace

    cfg = run.cfg
    pool = run.train_pool
    order = prompt_stream(len(pool), seed_for(cfg.seed, step, 6))
    need = min(cfg.prompts_per_step, len(pool))

    def sample_round(positions: list[int]):
        problems = [pool[order[p]] for p in positions]
        groups = run.sample_groups(problems, [seed_for(cfg.seed, step, 7, p) for p in positions])
        out = []
        for prob, comps in zip(problems, groups):
            acc = sum(float(completion_to_trace(prob, c, j).outcome or 0.0) for j, c in enumerate(comps)) / len(comps)
            out.append((passes_filter(acc, cfg.acc_lower, cfg.acc_upper), comps))
        return out

    res = refill_draws(sample_round, need, len(pool), cfg.refill_oversample, cfg.refill_max_rounds)
    problems = [pool[order[p]] for p in res.kept]
    groups = [res.results[p] for p in res.kept]
    tokens = sum(len(c.token_ids) for p, comps in res.results.items() for c in comps)
    info = {"refill/drawn_prompts": res.drawn, "refill/rounds": res.rounds, "refill/passing_prompts": sum(res.passed),
            "refill/all_sampled_tokens": tokens}
    if sum(res.passed) < need:
        msg = (f"step {step + 1}: the accuracy filter refill found only {sum(res.passed)} of {need} prompts with "
               f"accuracy in [{cfg.acc_lower}, {cfg.acc_upper}] after {res.drawn} prompts in {res.rounds} rounds; "
               "the batch is topped up with failing prompts, which the filter drops")
        warnings.warn(msg)
        info["refill/warning"] = msg
    return problems, groups, info


def check_filter_options(cfg) -> None:
    """InputError for a bad filter option, before any model loads."""
    if cfg.acc_filter not in ("on", "off", "auto"):
        raise InputError(f"--acc-filter must be on, off or auto, got {cfg.acc_filter!r}", field="acc_filter")
    if cfg.acc_filter_mode not in FILTER_MODES:
        raise InputError(f"--acc-filter-mode must be one of {FILTER_MODES}, got {cfg.acc_filter_mode!r}",
                         field="acc_filter_mode")
    if cfg.refill_oversample < 1.0 or cfg.refill_max_rounds < 1:
        raise InputError(f"--refill-oversample must be >= 1 and --refill-max-rounds >= 1, got "
                         f"{cfg.refill_oversample}, {cfg.refill_max_rounds}", field="refill_oversample")
    if not 0.0 <= cfg.acc_lower <= cfg.acc_upper <= 1.0:
        raise InputError(f"expected 0 <= --acc-lower <= --acc-upper <= 1, got {cfg.acc_lower}, {cfg.acc_upper}",
                         field="acc_lower")
