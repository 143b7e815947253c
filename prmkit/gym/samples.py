"""Graded policy samples on gym splits: the gym recipe's training and evaluation traces."""

from __future__ import annotations

from prmkit.data import SHIPPED_POLICY_DIR
from prmkit.gym import task as gym_task  # called as gym_task.make_split: tests trace gym use through it
from prmkit.policy.base import SamplingParams
from prmkit.policy.sample import make_sampler, sample_traces
from prmkit.schema import Trace


def gym_traces(split: str, num_problems: int, samples: int, seed: int, model: str = "",
               max_new_tokens: int = 160, desc: str = "sample") -> list[Trace]:
    """`samples` graded traces per gym problem from the policy (temperature 1), with gold first errors;
    `model` empty = the shipped gym policy."""
    sampler = make_sampler(model or str(SHIPPED_POLICY_DIR))
    params = SamplingParams(n=samples, max_new_tokens=max_new_tokens, temperature=1.0, seed=seed)
    return sample_traces(sampler, gym_task.make_split(split, num_problems), params, desc=desc)
