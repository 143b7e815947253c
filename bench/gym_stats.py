"""Gym statistics of the shipped policy on the test and long splits (T=1, 500 problems each).

Writes bench/results/gym_stats.json: {split: {sampled_accuracy, first_error_hist,
right_answer_wrong_step, num_traces, well_formed, ...}}.
"""

from __future__ import annotations

import json
from pathlib import Path

from prmkit.gym.stats import GymStatsConfig, run
from prmkit.schema import atomic_write_text


def main() -> None:
    results = {split: run(GymStatsConfig(split=split, num_problems=500, json=True)) for split in ("test", "long")}
    atomic_write_text(Path(__file__).parent / "results" / "gym_stats.json", json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
