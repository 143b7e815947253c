"""Judge verdict parsing, the rule judge's error rate, and the LM judge's plumbing on the gym model."""

from __future__ import annotations

import pytest

from prmkit.gym.task import make_split
from prmkit.label.judge import LMJudge, RuleJudge, judge_prompt, parse_verdict
from prmkit.policy.base import SamplingParams
from prmkit.policy.sample import sample_traces


@pytest.mark.parametrize("text,n,expected", [
    ("\\boxed{3}", 5, 2),
    ("The first error is in Step 2.", 5, 1),
    ("paragraph 4 is wrong", 5, 3),
    ("1", 5, 0),
    ("2.", 5, 1),
    ("-1", 5, -1),
    ("\\boxed{-1}", 5, -1),
    ("None of the steps is wrong", 5, -1),
    ("All steps are correct.", 5, -1),
    ("no errors", 5, -1),
    ("\\boxed{7}", 5, None),  # out of range: unparsed, not clamped
    ("Step 0", 5, None),
    ("7+3=10\nA:15", 5, None),  # junk
    ("", 5, None),
])
def test_parse_verdict(text, n, expected):
    assert parse_verdict(text, n) == expected


def _traces(gym_policy, n=40):
    return sample_traces(gym_policy, make_split("test", n // 4), SamplingParams(n=4, max_new_tokens=96, seed=5))


def test_rule_judge_error_rate(gym_policy):
    traces = _traces(gym_policy, 80)
    items = list(enumerate(traces))
    exact = RuleJudge(0.0).judge(items)
    assert [v["first_error"] for v in exact] == [t.first_error for t in traces]
    never = RuleJudge(1.0).judge(items)
    assert all(v["first_error"] != t.first_error and -1 <= v["first_error"] < len(t.steps)
               for v, t in zip(never, traces))
    some = RuleJudge(0.5, seed=1).judge(items)
    wrong = sum(v["first_error"] != t.first_error for v, t in zip(some, traces))
    assert 20 <= wrong <= 60  # Binomial(80, 0.5): far outside this range has probability < 1e-3
    assert RuleJudge(0.5, seed=1).judge(items[10:20]) == some[10:20]  # seeded per trace, not per batch


def test_lm_judge_plumbing_with_gym_model(gym_policy):
    traces = _traces(gym_policy, 8)
    judge = LMJudge(gym_policy, max_new_tokens=12)
    verdicts = judge.judge(list(enumerate(traces)))
    assert len(verdicts) == len(traces)
    for v, t in zip(verdicts, traces):
        assert isinstance(v["text"], str)
        assert v["first_error"] == parse_verdict(v["text"], len(t.steps))
    assert judge.unparsed == sum(v["first_error"] is None for v in verdicts)
    p = judge_prompt(traces[0])
    assert "Step 1: " + traces[0].steps[0] in p and traces[0].prompt.strip() in p
