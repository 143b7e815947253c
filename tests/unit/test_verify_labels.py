"""Tool-checked labels: the gym checker reproduces gold exactly, the sympy checker decides only
the equations it can read, the GSM8K calculator checker passes references and flags corruptions."""

from __future__ import annotations

import json

import pytest

from prmkit.gym.task import make_split, make_trace
from prmkit.label.report import predicted_first_error
from prmkit.label.verify import check_equation_text, label_verify, parse_math
from prmkit.schema import Problem, Trace
from tests.conftest import GSM8K_TEST


def test_gym_verify_equals_gold_on_policy_traces(gym_policy):
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.sample import sample_traces

    from tests import gym_reference as ref

    traces = sample_traces(gym_policy, make_split("test", 30), SamplingParams(n=4, max_new_tokens=96, seed=3))
    labelled = label_verify(traces)
    # against the independent re-derivation of the gym's gold, not the gym checker itself
    assert [t.first_error for t in traces] == [ref.first_error(t.prompt, t.steps) for t in traces]
    assert [t.labels.values for t in labelled] == [ref.verify_labels(t.prompt, t.steps) for t in traces]
    assert all(predicted_first_error(t.labels.values) == t.first_error for t in labelled)
    assert all(t.labels.meta == {"checker": "gym", "covered": len(t.steps)} for t in labelled)
    assert any(t.first_error not in (-1, None) for t in traces) and any(t.first_error == -1 for t in traces)


def test_gym_verify_hand_values():
    p = Problem(id="p", prompt="Q:7,+3,*2,-5\n", answer="15")
    t = make_trace(p, "7+3=10\n10*2=21\n20-5=15\nA:15")  # step 1 wrong; step 2 uses the true 20
    assert label_verify([t])[0].labels.values == [1.0, 0.0, 1.0, 1.0]
    cut = make_trace(p, "7+3=10\n10*2=20")  # stopped early: gold puts the error on the last step
    assert label_verify([cut])[0].labels.values == [1.0, 0.0]


@pytest.mark.parametrize("completion", [
    "7+3=10\n10*2=20\n20-5=15\nA:15",      # right
    "7+3=10\n11*2=22\n22-5=17\nA:17",      # a wrong carried value with right arithmetic after it
    "07+3=10\n10*2=20\n20-5=15\nA:15",     # a non-canonical number
    " 7+3=10 \n10*2=20\n20-5=15\nA:15",    # surrounding spaces are fine
    "7+3=10\n10*2=20\n20-5=15\nA:15\nA:15",  # a step after the answer
    "7+3=10\n10+2=12\n20-5=15\nA:15",      # a wrong operator, then back on the true chain
    "7+3=10\n10*2=20\n20-5=15\nA:-15",
    "7 + 3 = 10\n10*2=20",                  # spaced out, and stopped early
])
def test_gym_verify_matches_the_independent_reference(completion):
    from tests import gym_reference as ref

    p = Problem(id="p", prompt="Q:7,+3,*2,-5\n", answer="15")
    t = make_trace(p, completion)
    assert t.first_error == ref.first_error(p.prompt, t.steps)
    assert label_verify([t])[0].labels.values == ref.verify_labels(p.prompt, t.steps)


def test_gym_reference_by_hand():
    """The reference itself, on the hand-labelled cases above."""
    from tests import gym_reference as ref

    assert ref.true_steps("Q:7,+3,*2,-5\n") == ["7+3=10", "10*2=20", "20-5=15", "A:15"]
    assert ref.verify_labels("Q:7,+3,*2,-5\n", ["7+3=10", "10*2=21", "20-5=15", "A:15"]) == [1.0, 0.0, 1.0, 1.0]
    assert ref.verify_labels("Q:7,+3,*2,-5\n", ["7+3=10", "10*2=20"]) == [1.0, 0.0]
    assert ref.first_error("Q:8,/4\n", ["8/4=2", "A:2"]) == -1


@pytest.mark.parametrize("step,expected", [
    ("2 + 3 = 5", True),
    ("So 2 + 3 = 6.", False),
    ("We get 12 / 4 = 3 and then 3 * 5 = 15", True),
    ("3 * 5 = 15 = 16", False),  # chained: the second equality fails
    (r"\frac{3}{4} + \frac{1}{4} = 1", True),
    ("2x + 3x = 5x", True),
    ("(x+1)^2 = x^2 + 2x + 1", True),
    ("(x+1)^2 = x^2 + 1", False),
    ("x = 3", None),  # a definition: nothing to check
    ("Let us think about the problem.", None),
    ("The cat = happy", None),
])
def test_sympy_checker_hand_cases(step, expected):
    assert check_equation_text(step) is expected


def test_parse_math_rejects_code():
    for bad in ["__import__('os')", "a.b", "f(2)", "2 ** 99999"]:
        with pytest.raises(ValueError):
            parse_math(bad)


def test_sympy_labels_unknown_where_uncovered():
    t = Trace(problem_id="m", prompt="Compute.", steps=["First add: 2+2=4", "Think.", "Then 4*3=13"])
    lab = label_verify([t], checker="sympy")[0].labels
    assert lab.values == [1.0, None, 0.0] and lab.meta["covered"] == 2


def test_calculator_labels_on_gsm8k_references_and_corruptions():
    from prmkit.tasks.calculator import solution_steps

    rows = [json.loads(line) for line in GSM8K_TEST.read_text().splitlines()[:200]]
    covered = flagged = 0
    corrupted_flagged = corrupted = 0
    for i, r in enumerate(rows):
        p = Problem(id=f"g{i}", prompt=r["question"], answer=r["answer"].split("####")[-1].strip(), task="gsm8k")
        t = Trace(problem_id=p.id, prompt=p.prompt, steps=solution_steps(r["answer"]))
        vals = label_verify([t], problems={p.id: p})[0].labels.values
        covered += sum(v is not None for v in vals)
        flagged += sum(v == 0.0 for v in vals)
        for k, s in enumerate(t.steps):  # corrupt the annotated result: <<a=b>> -> <<a=b+1>>
            if "<<" in s and ">>" in s:
                inner = s[s.index("<<") + 2:s.index(">>")]
                expr, _, val = inner.partition("=")
                try:
                    bumped = str(int(val) + 1)
                except ValueError:
                    continue
                bad = Trace(problem_id=p.id, prompt=p.prompt,
                            steps=t.steps[:k] + [s.replace(f"<<{inner}>>", f"<<{expr}={bumped}>>", 1)] + t.steps[k + 1:])
                corrupted += 1
                corrupted_flagged += label_verify([bad], problems={p.id: p})[0].labels.values[k] == 0.0
                break
    assert covered > 500 and flagged <= 2
    assert corrupted > 100 and corrupted_flagged == corrupted
