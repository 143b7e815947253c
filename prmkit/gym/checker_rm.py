"""The gym's exact step checker behind the `RewardModel` protocol (`prmkit.rewards.base`).

The spec `checker[:flip]` of every command that takes a reward model loads it (`prmkit.resolve`).
"""

from __future__ import annotations

import random
import zlib
from typing import Sequence

from prmkit.gym.task import parse_prompt, step_is_correct
from prmkit.rewards.base import ScorerStats


class GymCheckerRM:
    """The gym's exact checker as a reward model: 1.0 for a right step, 0.0 for a wrong one.

    `flip_rate` flips each verdict with that probability (seeded by the step's text and position,
    so a step always gets the same verdict) to stand in for an imperfect verifier. It reads no
    tokens: `num_parameters` is 0, so it costs no FLOPs in search accounting.
    """

    def __init__(self, aggregation: str = "min", flip_rate: float = 0.0, seed: int = 0):
        if not 0.0 <= flip_rate <= 1.0:
            raise ValueError(f"flip_rate must be in [0, 1], got {flip_rate}")
        self.aggregation, self.flip_rate, self.seed = aggregation, flip_rate, seed
        self.stats = ScorerStats()
        # what the commands read from any reward model: a 0/1 verdict is wrong below 0.5
        self.kind, self.threshold, self.meta = "checker", 0.5, {"flip_rate": flip_rate}

    @property
    def num_parameters(self) -> int:
        return 0

    def score(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        self.stats.calls += 1
        self.stats.sequences += len(prompts)
        out = []
        for prompt, ss in zip(prompts, steps):
            chain = parse_prompt(prompt)
            row, ok = [], True
            for k, s in enumerate(ss):
                ok = ok and step_is_correct(s, k, chain)  # after the first error every step is wrong
                v = 1.0 if ok else 0.0
                if self.flip_rate:
                    key = zlib.crc32(f"{self.seed}|{prompt}|{k}|{s}".encode())
                    if random.Random(key).random() < self.flip_rate:
                        v = 1.0 - v
                row.append(v)
            out.append(row)
        return out
