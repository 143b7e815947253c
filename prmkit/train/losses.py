"""Reward-model losses as pure torch functions (the implicit-PRM reward arithmetic they use is
`prmkit.rewards.implicit_math`).

Shapes: B batch, T tokens, S steps. Every `*_mask` is bool (True = counts). Step positions are
token indices into T of the LAST token of each step (the convention of `prmkit.steps`),
padded with -1 after a row's real steps.

Reductions: `"mean"` (default) averages over the items that count (real steps for the step loss,
rows for sequence losses), `"sum"` adds them, `"none"` returns the unreduced tensor with 0 at
padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prmkit.rewards.implicit_math import check_same_shape, implicit_outcome_reward

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {list(_REDUCTIONS)}")
    if mask is not None:
        loss = loss * mask.to(loss.dtype)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    denom = mask.sum() if mask is not None else torch.tensor(loss.numel())
    if int(denom) == 0:
        raise ValueError("mean reduction over zero items: the mask selects nothing")
    return loss.sum() / denom.to(loss.dtype)


# --------------------------------------------------------------------------- discriminative PRM


def bce_step_loss(step_inputs: torch.Tensor, step_targets: torch.Tensor, step_mask: torch.Tensor, *,
                  inputs_are_probs: bool = False, reduction: str = "mean") -> torch.Tensor:
    """Per-step binary cross-entropy with hard (0/1) or soft ([0,1]) targets (docs/methods.md).

    L = -[y log p + (1-y) log(1-p)] at every real step; p = sigmoid(logit), or the input itself when
    `inputs_are_probs` (SCAN's `BCELoss(sigmoid(logit), soft_target)`). Soft targets stay floats —
    they are never rounded. Targets at padding (e.g. -100) are ignored.

    step_inputs (B,S) logits or probabilities; step_targets (B,S) float; step_mask (B,S) bool.
    "mean" averages over real steps of the whole batch (as token-classification trainers do).
    """
    check_same_shape(step_inputs=step_inputs, step_targets=step_targets, step_mask=step_mask)
    mask = step_mask.bool()                                                   # (B,S)
    targets = step_targets.to(step_inputs.dtype)                              # (B,S) never cast to int
    real = targets[mask]
    if bool(((real < 0) | (real > 1)).any()):
        raise ValueError(f"step targets must lie in [0, 1] at real steps; got min {real.min().item()}, "
                         f"max {real.max().item()}")
    targets = torch.where(mask, targets, torch.zeros_like(targets))          # (B,S) padding -> 0
    if inputs_are_probs:
        # torch clamps log at -100, so p in {0, 1} gives a large finite loss, not inf
        loss = F.binary_cross_entropy(step_inputs, targets, reduction="none")          # (B,S)
    else:
        loss = F.binary_cross_entropy_with_logits(step_inputs, targets, reduction="none")  # (B,S)
    return _reduce(loss, mask, reduction)


def orm_loss(logits: torch.Tensor, outcome_labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Outcome reward model: BCE of one scalar logit per response against its graded outcome.

    The response-level analogue of the step BCE of docs/methods.md (one "step" = the whole response).
    logits (B,); outcome_labels (B,) float in [0,1].
    """
    check_same_shape(logits=logits, outcome_labels=outcome_labels)
    loss = F.binary_cross_entropy_with_logits(logits, outcome_labels.to(logits.dtype), reduction="none")  # (B,)
    return _reduce(loss, None, reduction)


# --------------------------------------------------------------------------- implicit PRM


def implicit_ce_loss(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
                     outcome_labels: torch.Tensor, beta: float, *, reduction: str = "mean") -> torch.Tensor:
    """Implicit-PRM cross-entropy: -[l log sigmoid(r) + (1-l) log(1 - sigmoid(r))] (Yuan et al. 2412.01981 CE).

    r = beta * sum_t log(pi/pi_ref) over response tokens; computed with logits (same value as the
    official `BCELoss(sigmoid(r), l)`, without its overflow). logprobs, ref_logprobs (B,T); mask
    (B,T) bool; outcome_labels (B,) float in [0,1]. "mean" averages over the batch.
    """
    r = implicit_outcome_reward(logprobs, ref_logprobs, mask, beta)          # (B,)
    return orm_loss(r, outcome_labels, reduction=reduction)


def dpo_loss(chosen_logps: torch.Tensor, chosen_ref_logps: torch.Tensor, rejected_logps: torch.Tensor,
             rejected_ref_logps: torch.Tensor, beta: float, *, reduction: str = "mean") -> torch.Tensor:
    """DPO: -log sigmoid(beta * ((c - c_ref) - (r - r_ref))) (Rafailov et al. 2305.18290; Implicit PRM, arXiv 2412.01981 DPO).

    All inputs (B,) summed response log-probs (policy / reference, chosen / rejected). "mean"
    averages over pairs.
    """
    check_same_shape(chosen_logps=chosen_logps, chosen_ref_logps=chosen_ref_logps,
                      rejected_logps=rejected_logps, rejected_ref_logps=rejected_ref_logps)
    margin = beta * ((chosen_logps - chosen_ref_logps) - (rejected_logps - rejected_ref_logps))  # (B,)
    return _reduce(-F.logsigmoid(margin), None, reduction)                   # (B,) or ()
