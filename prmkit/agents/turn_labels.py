"""Turn labels without gold: Monte Carlo values of each turn prefix from the policy's own continuations.

Turn t's value is the share of K continuations from the context after turn t that succeed (the
Math-Shepherd estimate, arXiv 2312.08935, applied to turns); `hard` labels a turn good when any
continuation succeeds, `soft` keeps the share. A finished episode's answer turn is its outcome.
"""

from __future__ import annotations

from typing import Sequence

from prmkit.agents.env import EnvTask, Episode
from prmkit.agents.rollout import RolloutParams, rollout
from prmkit.schema import Problem, StepLabels


def mc_turn_values(sampler, task: EnvTask, problems: dict[str, Problem], episodes: Sequence[Episode],
                   params: RolloutParams) -> list[list[float]]:
    """Per episode, the MC value after each of its turns (`params.k` continuations per prefix)."""
    jobs, where = [], []
    for e, ep in enumerate(episodes):
        actions = [t.action for t in ep.turns]
        for t in range(len(actions)):
            if t == len(actions) - 1 and ep.finished:
                continue  # the answer turn's value is the episode's own outcome
            jobs.append((problems[ep.problem_id], actions[: t + 1]))
            where.append((e, t))
    values = [[float(ep.outcome or 0.0) if ep.finished else 0.0 for _ in ep.turns] for ep in episodes]
    if jobs:
        results = rollout(sampler, [p for p, _ in jobs], task.make_env, params, prefixes=[a for _, a in jobs])
        for j, (e, t) in enumerate(where):
            group = results[j * params.k:(j + 1) * params.k]
            wins = [task.outcome(jobs[j][0], ep) for ep, _ in group]
            values[e][t] = sum(wins) / len(wins)
    return values


def mc_turn_labels(values: Sequence[float], k: int, mode: str = "hard") -> StepLabels:
    """StepLabels of one episode's turns from its MC values."""
    from prmkit.errors import InputError

    if mode not in ("hard", "soft"):
        raise InputError(f"expected 'hard' or 'soft', got {mode!r}", field="mode")
    labels = [float(v > 0) for v in values] if mode == "hard" else [float(v) for v in values]
    return StepLabels(values=labels, method=f"turn-mc-{mode}", rollouts=k * len(values))
