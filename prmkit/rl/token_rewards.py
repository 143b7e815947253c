"""Token-level rewards for an external RL trainer (verl, OpenRLHF): prmkit's credit rules, with the
baselines left to the trainer's own advantage estimator.

prmkit's own RL path (`prmkit.rl.trainer`, recipes in `prmkit.rl.methods`) turns step scores into
*advantages*. An external trainer wants *rewards* on tokens instead and runs its own estimator (GAE,
REINFORCE++, RLOO, GRPO, PRIME's RLOO over token rewards). This module gives those rewards: each step's reward on the token that ends
the step (`advantages.step_to_token_rewards`, the placement PURE's verl code uses, arXiv 2504.15275),
and the outcome on the response's last real token (where verl puts a verifiable reward).

Shapes: B responses, T response tokens, S steps. Pure functions; no trainer import.
"""

from __future__ import annotations

import torch

from prmkit.errors import InputError
from prmkit.rl import advantages as adv_fns
from prmkit.rl import shaping

CREDIT_RULES = ("outcome+process", "pure", "pure-sum", "pav", "prof")


def pure_transform(step_scores: torch.Tensor, step_mask: torch.Tensor, credit: str,
                   temperature: float) -> torch.Tensor:
    """PURE's step reward before any baseline: r = 2p - 1 (p(+) - p(-)), then the min-form
    softmax-T weights (credit 'min', arXiv 2504.15275 eq. 4) or the raw sum ('sum') -> (B,S)."""
    r = torch.where(step_mask, 2.0 * step_scores - 1.0, torch.zeros_like(step_scores))  # (B,S)
    if credit == "min":
        return adv_fns.min_form_rewards(r, step_mask, temperature)  # (B,S)
    if credit == "sum":
        return r  # (B,S)
    raise InputError(f"pure credit must be 'min' or 'sum', got {credit!r}", field="credit")


def mean_step_score(step_scores: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    """Mean score over each row's real steps (0 for a row with none) -> (B,)."""
    m = step_mask.to(step_scores.dtype)  # (B,S)
    return (step_scores * m).sum(-1) / m.sum(-1).clamp(min=1)  # (B,)


def credit_step_rewards(rule: str, step_scores: torch.Tensor, step_mask: torch.Tensor, outcomes: torch.Tensor,
                        groups: torch.Tensor, *, temperature: float = 0.1, prof_keep: int = 4
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-step process rewards (B,S), rows kept (B,) bool) of a credit rule:

    - outcome+process: the PRM's step scores as they are (outcome added by the caller);
    - pure / pure-sum: PURE's min-form / sum-form transformed rewards of 2p - 1;
    - pav: PAV progress (its alpha is the caller's process coefficient);
    - prof: no process reward; the PROF consistency filter (arXiv 2509.03403) picks the rows kept.
    """
    keep = torch.ones_like(outcomes, dtype=torch.bool)  # (B,)
    if rule == "outcome+process":
        return torch.where(step_mask, step_scores, torch.zeros_like(step_scores)), keep
    if rule in ("pure", "pure-sum"):
        return pure_transform(step_scores, step_mask, "min" if rule == "pure" else "sum", temperature), keep
    if rule == "pav":
        return shaping.pav_progress(step_scores, step_mask, groups), keep
    if rule == "prof":
        keep = shaping.prof_filter(outcomes, mean_step_score(step_scores, step_mask), groups, prof_keep)  # (B,)
        return torch.zeros_like(step_scores), keep
    raise InputError(f"unknown credit rule {rule!r}; expected one of {list(CREDIT_RULES)}", field="credit")


def token_level_rewards(rule: str, step_scores: torch.Tensor, step_end: torch.Tensor, step_mask: torch.Tensor,
                        outcomes: torch.Tensor, groups: torch.Tensor, response_lengths: torch.Tensor,
                        num_tokens: int, *, process_coef: float = 1.0, outcome_coef: float = 1.0,
                        temperature: float = 0.1, prof_keep: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rewards (B,T) and kept rows (B,): process_coef * each step's reward on its end token
    (`step_end`, response-token indices) + outcome_coef * outcome on the last real token
    (`response_lengths - 1`). Rows the rule drops (PROF) get all-zero rewards."""
    if bool((response_lengths < 1).any()):
        raise InputError("every response needs at least one real token", field="response_lengths")
    process, keep = credit_step_rewards(rule, step_scores, step_mask, outcomes, groups,
                                        temperature=temperature, prof_keep=prof_keep)  # (B,S), (B,)
    tok = adv_fns.step_to_token_rewards(process, step_end, step_mask, num_tokens) * process_coef  # (B,T)
    last = (response_lengths - 1).long()[:, None]  # (B,1)
    tok = tok.scatter_add(1, last, (outcome_coef * outcomes.to(tok.dtype))[:, None])  # (B,T)
    return torch.where(keep[:, None], tok, torch.zeros_like(tok)), keep  # (B,T), (B,)
