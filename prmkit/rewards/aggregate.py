"""Step scores -> one response score (docs/methods.md; search-and-learn `aggregate_scores`).

Which rule is right depends on what the labels mean (Lessons of PRMs, arXiv 2501.07301, docs/methods.md): value-like labels
(MC estimates, implicit-PRM Q) -> `last`; correctness labels (human, judge, consensus-filtered)
-> `min` or `prod`. `sum` is the implicit-PRM "sum of step rewards" integration (Implicit PRM, arXiv 2412.01981).

Two forms with the same names and the same semantics:

* `aggregate(step_scores, how)` on one response's list of floats;
* `aggregate_batch(step_scores (B,S), step_mask (B,S), how)` on a padded torch batch.

A response with no steps has no score: both forms raise `ValueError` rather than invent one.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch


def _min(xs: Sequence[float]) -> float:
    return float(min(xs))


def _prod(xs: Sequence[float]) -> float:
    # plain product (no log space): step scores of 0 are legal and must give 0
    return float(math.prod(xs))


def _last(xs: Sequence[float]) -> float:
    return float(xs[-1])


def _mean(xs: Sequence[float]) -> float:
    return float(math.fsum(xs) / len(xs))


def _sum(xs: Sequence[float]) -> float:
    return float(math.fsum(xs))


# name -> fn(list of step scores) -> response score  (docs/methods.md)
AGGREGATIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": _min,      # min_k p_k
    "prod": _prod,    # prod_k p_k
    "last": _last,    # p_K
    "mean": _mean,    # (1/K) sum_k p_k
    "sum": _sum,      # sum_k p_k
}


def _check_how(how: str) -> None:
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; expected one of {sorted(AGGREGATIONS)}")


def aggregate(step_scores: Sequence[float], how: str) -> float:
    """One response score from its step scores; `how` in `AGGREGATIONS` (min, prod, last, mean, sum).

    >>> aggregate([0.9, 0.5, 0.8], "min"), aggregate([0.9, 0.5, 0.8], "last")
    (0.5, 0.8)
    """
    _check_how(how)
    if len(step_scores) == 0:
        raise ValueError(f"cannot aggregate ({how!r}) a response with no step scores")
    return AGGREGATIONS[how](list(step_scores))


def aggregate_batch(step_scores: torch.Tensor, step_mask: torch.Tensor, how: str) -> torch.Tensor:
    """Masked batch form of `aggregate`: returns (B,) response scores.

    step_scores (B,S) float; step_mask (B,S) bool, True on real steps (need not be a prefix:
    `last` takes the last True position). Padded entries never influence the result.
    """
    _check_how(how)
    if step_scores.shape != step_mask.shape or step_scores.dim() != 2:
        raise ValueError(f"expected step_scores and step_mask of the same (B,S) shape, "
                         f"got {tuple(step_scores.shape)} and {tuple(step_mask.shape)}")
    mask = step_mask.bool()                                                  # (B,S)
    counts = mask.sum(dim=1)                                                 # (B,)
    if bool((counts == 0).any()):
        rows = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"cannot aggregate ({how!r}) rows with no steps: rows {rows}")
    return _BATCH_AGGREGATIONS[how](step_scores, mask, counts)


def _batch_last(x: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    # index of the last True per row = max over positions where the mask holds
    pos = torch.arange(x.shape[1], device=x.device).expand_as(mask)          # (B,S)
    last = pos.masked_fill(~mask, -1).amax(dim=1)                            # (B,)
    return x.gather(1, last.unsqueeze(1)).squeeze(1)                         # (B,)


# name -> fn(step_scores (B,S), step_mask (B,S), counts (B,)) -> (B,); same names as AGGREGATIONS
_BATCH_AGGREGATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "min": lambda x, m, c: x.masked_fill(~m, float("inf")).amin(dim=1),
    "prod": lambda x, m, c: x.masked_fill(~m, 1.0).prod(dim=1),
    "last": _batch_last,
    "mean": lambda x, m, c: x.masked_fill(~m, 0.0).sum(dim=1) / c.to(x.dtype),
    "sum": lambda x, m, c: x.masked_fill(~m, 0.0).sum(dim=1),
}
