"""The stronger gym verifier shipped for the search bench (bench/models/strong_verifier) loads as a
directory of its own and checks arithmetic: gold steps score high, a step with a wrong result low."""

from __future__ import annotations

from pathlib import Path

from prmkit.gym.task import make_split, parse_prompt
from prmkit.rewards import load_reward_model

STRONG = Path(__file__).resolve().parents[2] / "bench" / "models" / "strong_verifier"


def test_strong_verifier_scores_gold_high_and_a_wrong_result_low(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # its likelihood LM is found inside its own directory
    rm = load_reward_model(str(STRONG), device="cpu")
    probs = make_split("long", 20)
    gold = [parse_prompt(p.prompt).solution_steps() for p in probs]
    bad = []
    for steps in gold:
        k = len(steps) // 2
        lhs, rhs = steps[k].split("=")
        bad.append(steps[:k] + [f"{lhs}={int(rhs) + 1}"])  # the k-th result off by one
    good_scores = rm.score([p.prompt for p in probs], gold)
    bad_scores = rm.score([p.prompt for p in probs], bad)
    assert sum(min(s) > 0.5 for s in good_scores) >= 18
    assert sum(s[-1] < 0.5 for s in bad_scores) >= 18
    assert all(min(s[:-1]) > 0.5 for s in bad_scores[:5])
