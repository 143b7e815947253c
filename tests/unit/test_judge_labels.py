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
        assert v["first_error"] is None or -1 <= v["first_error"] < len(t.steps)
    assert judge.unparsed == sum(v["first_error"] is None for v in verdicts)
    p = judge_prompt(traces[0])
    assert "Step 1: " + traces[0].steps[0] in p and traces[0].prompt.strip() in p


class _ScriptedLM:
    """A sampler that answers the i-th prompt with the i-th fixed reply, and records what it was asked
    (the language model is not under test here; what the judge asks it and makes of its replies is)."""

    def __init__(self, replies: list[str]):
        self.replies, self.calls = replies, []

    def sample(self, prompts, params, seeds=None):
        from prmkit.policy.base import Completion

        self.calls.append((list(prompts), params))
        return [[Completion(text=r, token_ids=[], logprobs=[], steps=[], finish_reason="stop")]
                for r in self.replies[: len(prompts)]]


def test_lm_judge_verdicts_by_hand():
    from prmkit.schema import Trace

    traces = [Trace(problem_id=f"p{i}", prompt="Q:1,+2,*3\n", steps=["1+2=3", "3*3=9", "A:9"]) for i in range(5)]
    replies = ["\\boxed{2}", "The first error is in Step 3.", "All steps are correct.", "\\boxed{4}", "unsure"]
    lm = _ScriptedLM(replies)
    judge = LMJudge(lm, max_new_tokens=7)
    verdicts = judge.judge(list(enumerate(traces)))
    # by hand: steps are numbered from 1 in the prompt; 2 -> index 1, 3 -> index 2, "all correct" -> -1,
    # 4 is past the 3 steps -> unparsed, "unsure" -> unparsed
    assert [v["first_error"] for v in verdicts] == [1, 2, -1, None, None]
    assert [v["text"] for v in verdicts] == replies
    assert judge.unparsed == 2
    (prompts, params), = lm.calls
    assert len(prompts) == 5 and "Step 1: 1+2=3\nStep 2: 3*3=9\nStep 3: A:9" in prompts[0]
    assert "Q:1,+2,*3" in prompts[0]
    assert (params.n, params.temperature, params.max_new_tokens) == (1, 0.0, 7)
