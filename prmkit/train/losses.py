"""Reward-model losses and implicit-PRM reward arithmetic as pure torch functions.

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


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"expected tensors of one shape, got {shapes}")


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
    _check_same_shape(step_inputs=step_inputs, step_targets=step_targets, step_mask=step_mask)
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
    _check_same_shape(logits=logits, outcome_labels=outcome_labels)
    loss = F.binary_cross_entropy_with_logits(logits, outcome_labels.to(logits.dtype), reduction="none")  # (B,)
    return _reduce(loss, None, reduction)


# --------------------------------------------------------------------------- implicit PRM


def implicit_prm_rewards(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
                         beta: float) -> torch.Tensor:
    """Token rewards beta * log(pi(y_t|y_<t) / pi_ref(y_t|y_<t)), 0 off the response (Yuan et al. 2412.01981).

    logprobs, ref_logprobs (B,T) log-probs of the taken tokens; mask (B,T) bool, True on response
    tokens. Returns (B,T).
    """
    _check_same_shape(logprobs=logprobs, ref_logprobs=ref_logprobs, mask=mask)
    return beta * (logprobs - ref_logprobs) * mask.to(logprobs.dtype)        # (B,T)


def implicit_outcome_reward(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
                            beta: float) -> torch.Tensor:
    """Response reward r = beta * sum_t log(pi/pi_ref) over response tokens (Implicit PRM, arXiv 2412.01981). Returns (B,)."""
    return implicit_prm_rewards(logprobs, ref_logprobs, mask, beta).sum(dim=1)  # (B,)


def _check_step_ends(step_ends: torch.Tensor, start: torch.Tensor, T: int) -> torch.Tensor:
    """Validate (B,S) step ends padded with -1 at the tail; return the (B,S) bool step mask."""
    valid = step_ends >= 0                                                    # (B,S)
    if valid.shape[1] > 1 and bool((valid[:, 1:] & ~valid[:, :-1]).any()):
        raise ValueError("step_ends: padding (-1) must come after a row's real steps")
    if bool((step_ends >= T).any()):
        raise ValueError(f"step_ends: positions must be < T = {T}, got max {int(step_ends.max())}")
    if bool((valid & (step_ends < start.unsqueeze(1))).any()):
        raise ValueError("step_ends: a step ends before its row's start position")
    if valid.shape[1] > 1 and bool((valid[:, 1:] & (step_ends[:, 1:] <= step_ends[:, :-1])).any()):
        raise ValueError("step_ends: positions must be strictly increasing within a row")
    return valid


def q_values(token_rewards: torch.Tensor, step_ends: torch.Tensor,
             start_positions: torch.Tensor | None = None) -> torch.Tensor:
    """Implicit Q at each step end: q^{t_k} = sum_{start <= i <= t_k} r_i (Yuan et al. 2412.01981).

    token_rewards (B,T) (e.g. from `implicit_prm_rewards`); step_ends (B,S) long, the index of each
    step's last token, -1 padding at the tail; start_positions (B,) long, first response token
    (default 0: token_rewards already zero off the response). Returns (B,S), 0 at padding.
    """
    B, T = token_rewards.shape
    start = (torch.zeros(B, dtype=torch.long, device=token_rewards.device)
             if start_positions is None else start_positions.long())           # (B,)
    ends = step_ends.long()                                                   # (B,S)
    valid = _check_step_ends(ends, start, T)                                  # (B,S)
    csum = torch.cumsum(token_rewards, dim=1)                                 # (B,T)
    at_end = csum.gather(1, ends.clamp(min=0))                                # (B,S)
    before = torch.where(start > 0, csum.gather(1, (start - 1).clamp(min=0).unsqueeze(1)).squeeze(1),
                         torch.zeros_like(start, dtype=csum.dtype))            # (B,) sum before start
    q = at_end - before.unsqueeze(1)                                          # (B,S)
    return torch.where(valid, q, torch.zeros_like(q))                         # (B,S)


def step_rewards_from_tokens(token_rewards: torch.Tensor, step_ends: torch.Tensor,
                             start_positions: torch.Tensor | None = None) -> torch.Tensor:
    """Step reward r^k = q^{t_k} - q^{t_{k-1}} = sum of step k's token rewards (Implicit PRM, arXiv 2412.01981, Implicit PRM, arXiv 2412.01981 "single").

    Step 0 covers tokens start..t_0, step k covers t_{k-1}+1..t_k; tokens after the last step end
    are in no step. Same arguments as `q_values`. Returns (B,S), 0 at padding.
    """
    q = q_values(token_rewards, step_ends, start_positions)                  # (B,S)
    prev = F.pad(q[:, :-1], (1, 0))                                           # (B,S) q^{t_{k-1}}, 0 for k = 0
    valid = step_ends >= 0                                                    # (B,S)
    return torch.where(valid, q - prev, torch.zeros_like(q))                  # (B,S)


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
    _check_same_shape(chosen_logps=chosen_logps, chosen_ref_logps=chosen_ref_logps,
                      rejected_logps=rejected_logps, rejected_ref_logps=rejected_ref_logps)
    margin = beta * ((chosen_logps - chosen_ref_logps) - (rejected_logps - rejected_ref_logps))  # (B,)
    return _reduce(-F.logsigmoid(margin), None, reduction)                   # (B,) or ()
