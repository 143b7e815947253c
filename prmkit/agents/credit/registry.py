"""Turn-level credit for multi-turn agents: the registry, the batch it reads, shared pieces, outcome baselines.

Shapes: B episodes, N turns (padded); `turn_mask` (B, N) bool marks real turns; `groups` (B,)
ids of the problem each episode answers (episodes of one problem form a group); `outcomes` (B,)
the episode's reward. Every method returns per-turn advantages (B, N), 0 on padded turns; the RL
loop gives each token of turn t's action the turn's advantage (observation tokens get none).

A method declares the extra inputs it needs by its parameter names (`answer_probs`, `step_rewards`,
`progress`, `valid`, `states`, `judge`, `tool_calls`, `action_ids`, `subgoals`, `self_judge`,
`relevance`); `compute_turn_advantages` passes them from a `TurnBatch` and refuses, naming the field,
when one is missing.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from typing import Callable

import torch

from prmkit.errors import InputError
from prmkit.rl.advantages import group_index, grpo_advantages, rloo_advantages

TURN_CREDIT: dict[str, Callable[..., torch.Tensor]] = {}
BASE_ARGS = ("outcomes", "groups", "turn_mask")


def turn_method(name: str):
    """Register a turn-credit function under `name` (its parameters after the base three are its needs)."""
    def wrap(fn):
        if name in TURN_CREDIT:
            raise ValueError(f"turn method {name!r} registered twice")
        TURN_CREDIT[name] = fn
        return fn
    return wrap


@dataclass
class TurnBatch:
    """What turn-credit methods read; each method uses the fields its parameters name."""

    outcomes: torch.Tensor  # (B,)
    groups: torch.Tensor  # (B,) problem ids as ints
    turn_mask: torch.Tensor  # (B, N) bool
    answer_probs: torch.Tensor | None = None  # (B, N+1) policy's prob. of the gold answer before turn 1 and after each turn
    step_rewards: torch.Tensor | None = None  # (B, N) a turn reward model's reward of each turn
    progress: torch.Tensor | None = None  # (B, N) a progress estimator's per-turn output
    valid: torch.Tensor | None = None  # (B, N) bool: the action executed (grounding)
    states: torch.Tensor | None = None  # (B, N) long: id of the environment state each turn acts in
    judge: torch.Tensor | None = None  # (B, N) a judge's weight of each turn (critical flags, importance)
    tool_calls: torch.Tensor | None = None  # (B,) tool calls of each episode
    action_ids: torch.Tensor | None = None  # (B, N) long: id of each action's text (count-based novelty)
    subgoals: torch.Tensor | None = None  # (B, N) a judge's verdict that the turn achieves a subgoal (CALM)
    self_judge: torch.Tensor | None = None  # (B, N) the agent's own verdict on its observation: 1 Yes, 0 No, NaN none
    relevance: torch.Tensor | None = None  # (B, N) relevance of the turn's observation to the gold answer (ReSeek)


def needs(name: str) -> tuple[str, ...]:
    """The TurnBatch fields method `name` reads beyond the base three."""
    fn = TURN_CREDIT[name]
    known = {f.name for f in fields(TurnBatch)}
    return tuple(p for p in inspect.signature(fn).parameters if p in known and p not in BASE_ARGS)


def compute_turn_advantages(name: str, batch: TurnBatch, **options) -> torch.Tensor:
    """Advantages (B, N) of method `name` on `batch`; `options` are the method's keyword settings."""
    if name not in TURN_CREDIT:
        raise InputError(f"unknown turn method {name!r}; expected one of {', '.join(sorted(TURN_CREDIT))}",
                         field="method")
    args = {}
    for field_name in BASE_ARGS + needs(name):
        value = getattr(batch, field_name)
        if value is None:
            raise InputError(f"turn method {name!r} needs {field_name!r}, which this batch lacks", field=field_name)
        args[field_name] = value
    out = TURN_CREDIT[name](**args, **options)
    return torch.where(batch.turn_mask, out, torch.zeros_like(out))


# ------------------------------------------------------------------------------------------------
# shared pieces
# ------------------------------------------------------------------------------------------------
def last_turn(turn_mask: torch.Tensor) -> torch.Tensor:
    """(B, N) bool: the last real turn of each episode."""
    n = turn_mask.sum(-1)  # (B,)
    idx = torch.arange(turn_mask.shape[1])[None, :]  # (1, N)
    return (idx == (n - 1)[:, None]) & turn_mask


def turn_returns(rewards: torch.Tensor, turn_mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """G_t = sum_{t' >= t, real} gamma^(t' - t) r_t' -> (B, N), 0 on padded turns."""
    r = torch.where(turn_mask, rewards, torch.zeros_like(rewards))
    out, running = torch.zeros_like(r), torch.zeros_like(r[:, 0])
    for t in range(r.shape[1] - 1, -1, -1):
        running = r[:, t] + gamma * running
        out[:, t] = running
    return torch.where(turn_mask, out, torch.zeros_like(out))


def group_normalize(values: torch.Tensor, mask: torch.Tensor, groups: torch.Tensor, eps: float = 1e-6,
                    normalize_std: bool = True) -> torch.Tensor:
    """(x - mean) / (std + eps) with mean and unbiased std over each group's masked entries (any shape
    (B, ...)); 0 where `mask` is False; a group with one entry gets 0 (as `grpo_advantages`)."""
    index, num = group_index(groups, values.shape[0], values.device)  # (B,)
    flat_idx = index.view(-1, *([1] * (values.dim() - 1))).expand_as(values)[mask]  # (M,)
    x = values[mask]  # (M,)
    count = torch.zeros(num, dtype=x.dtype).index_add_(0, flat_idx, torch.ones_like(x))
    mean = torch.zeros(num, dtype=x.dtype).index_add_(0, flat_idx, x) / count.clamp(min=1)
    centered = x - mean[flat_idx]
    if normalize_std:
        var = torch.zeros(num, dtype=x.dtype).index_add_(0, flat_idx, centered ** 2) / (count - 1).clamp(min=1)
        centered = centered / (var.sqrt()[flat_idx] + eps)
    out = torch.zeros_like(values)
    out[mask] = centered
    return out


def _broadcast(per_episode: torch.Tensor, turn_mask: torch.Tensor) -> torch.Tensor:
    return per_episode[:, None].to(torch.float32) * turn_mask.to(torch.float32)


def _loo_first_return(g0: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Leave-one-out group mean of each episode's whole return (B,)."""
    return g0 - rloo_advantages(g0, groups)


# ------------------------------------------------------------------------------------------------
# outcome baselines
# ------------------------------------------------------------------------------------------------
@turn_method("grpo")
def outcome_grpo(outcomes, groups, turn_mask):
    """Outcome-only GRPO over episodes: every turn of episode i gets (R_i - mean) / std (arXiv 2402.03300)."""
    return _broadcast(grpo_advantages(outcomes, groups), turn_mask)


@turn_method("rloo")
def outcome_rloo(outcomes, groups, turn_mask):
    """Outcome-only RLOO over episodes (arXiv 2402.14740)."""
    return _broadcast(rloo_advantages(outcomes, groups), turn_mask)
