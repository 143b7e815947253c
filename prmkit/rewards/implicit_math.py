"""Implicit-PRM reward arithmetic as pure torch functions (Yuan et al., arXiv 2412.01981).

A causal LM pi trained from outcome labels against its frozen reference pi_ref defines token rewards
r_t = beta * log(pi(y_t|y_<t) / pi_ref(y_t|y_<t)); the implicit Q at a step end is their running sum
from the first response token, and a step's reward the sum over its own tokens. Scoring
(`rewards.implicit.ImplicitPRM`), training (`train.losses`) and online PRMs in RL (`rl.prime`) all
use these functions.

Shapes: B batch, T tokens, S steps. Step positions are token indices into T of the LAST token of each
step (the convention of `prmkit.steps`), padded with -1 after a row's real steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_same_shape(**tensors: torch.Tensor) -> None:
    """Raise ValueError naming each tensor's shape unless all have one shape."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"expected tensors of one shape, got {shapes}")


def implicit_prm_rewards(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
                         beta: float) -> torch.Tensor:
    """Token rewards beta * log(pi(y_t|y_<t) / pi_ref(y_t|y_<t)), 0 off the response (Yuan et al. 2412.01981).

    logprobs, ref_logprobs (B,T) log-probs of the taken tokens; mask (B,T) bool, True on response
    tokens. Returns (B,T).
    """
    check_same_shape(logprobs=logprobs, ref_logprobs=ref_logprobs, mask=mask)
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
