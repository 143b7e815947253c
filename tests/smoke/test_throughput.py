"""The sampler-vs-generate timing the sampling and GPU benchmarks report (`prmkit.policy.throughput`), on the
gym policy: both sides make exactly the tokens asked for, and the ratios are per interleaved pair."""

from __future__ import annotations

import pytest

from prmkit.gym.task import make_split
from prmkit.policy.throughput import interleaved, spread, time_generate, time_ours

pytestmark = pytest.mark.usefixtures("one_thread")


def test_spread_by_hand():
    assert spread([3.0, 1.0, 2.0, 4.0]) == {"median": 2.5, "min": 1.0, "max": 4.0, "q1": 1.25, "q3": 3.75}
    assert spread([2.0]) == {"median": 2.0, "min": 2.0, "max": 2.0, "q1": 2.0, "q3": 2.0}


def test_interleaved_pairs_and_best_of(gym_policy):
    prompts = [p.prompt for p in make_split("test", 3)]
    res = interleaved(gym_policy, prompts, 6, 3)
    for clock in ("wall", "cpu"):
        r = res[clock]
        assert r["ratio"]["min"] <= r["ratio"]["median"] <= r["ratio"]["max"]
        assert r["ours_tokens_per_s"]["median"] > 0 and r["generate_tokens_per_s"]["median"] > 0
    assert time_ours(gym_policy, prompts, 6, 2) > 0 and time_generate(gym_policy, prompts, 6, 2) > 0
