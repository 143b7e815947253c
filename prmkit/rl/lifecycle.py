"""Pieces every RL run's lifecycle shares (`prmkit rl` and `prmkit agent rl`): the PPO-clip update over
shuffled minibatches, the held-out evaluation schedule, and saving / restoring a run's state and its
metrics at the last checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from prmkit.errors import InputError
from prmkit.rundir import load_checkpoint, save_checkpoint


def ppo_updates(model, optimizer, rows: torch.Tensor, loss_fn: Callable[[torch.Tensor], tuple[torch.Tensor, dict]],
                *, generator: torch.Generator, epochs: int, minibatch: int, grad_clip: float,
                scheduler=None) -> dict[str, list[float]]:
    """`epochs` passes over `rows` ((R,) long) in a fresh `generator` order, one optimizer step per
    minibatch: `loss_fn(mb)` -> (loss, stats of that minibatch), gradient-norm clip, optimizer (and
    scheduler) step. Returns every minibatch's loss and stats as floats, "loss" first."""
    out: dict[str, list[float]] = {"loss": []}
    for _ in range(epochs):
        order = rows[torch.randperm(len(rows), generator=generator)]
        for start in range(0, len(order), minibatch):
            loss, stats = loss_fn(order[start:start + minibatch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            out["loss"].append(float(loss.detach()))
            for k, v in stats.items():
                out.setdefault(k, []).append(float(v))
    return out


def mean_stats(stats: dict[str, list[float]]) -> dict[str, float]:
    """The mean of each non-empty list, in the dict's order."""
    return {k: sum(v) / len(v) for k, v in stats.items() if v}


def eval_due(done: int, total: int, every: int) -> bool:
    """Whether the held-out set is evaluated after `done` of `total` steps: every `every` steps and at the end
    (the start, step 0, is evaluated by the run itself)."""
    return done == total or bool(every and done % every == 0)


def save_state(path: Path, parts: dict[str, Any], **plain: Any) -> None:
    """Write `plain` data and each part's `state_dict()` to `path` (a part that is None, one the run does not
    have, is not written)."""
    state = dict(plain)
    for name, part in parts.items():
        if part is not None:
            state[name] = part.state_dict()
    save_checkpoint(state, path)


def load_state(path: Path, parts: dict[str, Any], map_location: Any = None,
               optional: tuple[str, ...] = ()) -> dict | None:
    """Read `path` (None when absent) and load each part the run has from it; a part missing from the
    file is an InputError unless it is `optional` (a model only some methods train). Returns the whole state."""
    if not path.exists():
        return None
    state = load_checkpoint(path, map_location=map_location)
    for name, part in parts.items():
        if part is None:
            continue
        if state.get(name) is None:
            if name in optional:
                continue
            raise InputError(f"the checkpoint has no {name!r} state; delete it to start this run over, or use a "
                             "new --out", file=str(path))
        part.load_state_dict(state[name])
    return state


def records_upto(metrics: Path, step: int) -> list[dict]:
    """The records of `metrics` (JSONL) whose "step" is at most `step`: what a run resumed from the
    checkpoint of `step` keeps ([] when the file is absent)."""
    if not metrics.exists():
        return []
    return [r for r in map(json.loads, metrics.read_text().splitlines()) if r["step"] <= step]


__all__ = ["eval_due", "load_state", "mean_stats", "ppo_updates", "records_upto", "save_state"]
