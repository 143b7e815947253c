"""Votes group final answers by the task's equivalence (math-verify for MATH), not by raw string."""

from __future__ import annotations

import pytest

from prmkit.evaluate.metrics import Candidate, bon_accuracy_curve, group_answers, majority_vote, weighted_vote
from prmkit.schema import Problem
from prmkit.search.base import Solution, select, task_equivalence
from prmkit.tasks import answer_equivalence

HALF, DHALF, THIRD = r"\frac{1}{2}", r"\dfrac{1}{2}", r"\frac{1}{3}"


@pytest.fixture(scope="module")
def math_eq():
    return answer_equivalence("math")


def test_group_answers_by_hand(math_eq):
    answers = [HALF, DHALF, "0.5", THIRD, None, "1/2", THIRD]
    assert group_answers(answers, math_eq) == [0, 0, 0, 1, None, 0, 1]
    assert group_answers(answers) == [0, 1, 2, 3, None, 4, 3]          # exact strings: five answers
    assert group_answers([]) == [] and group_answers([None, None], math_eq) == [None, None]


def test_group_answers_compares_with_each_groups_first_member():
    # |a - b| <= 1 is not transitive: 3 is within 1 of 2 but not of 1, its group's first member
    near = lambda a, b: abs(a - b) <= 1  # noqa: E731
    assert group_answers([1, 2, 3, 4, 0], near) == [0, 0, 1, 1, 0]
    calls = []
    group_answers(["a", "a", "a"], lambda x, y: calls.append((x, y)) or False)
    assert calls == []                                                   # equal answers never call it


def test_votes_with_math_equivalence(math_eq):
    answers = [HALF, DHALF, "0.5", THIRD, THIRD]
    assert majority_vote(answers) == THIRD                               # raw strings: 2 votes beat 1, 1, 1
    assert majority_vote(answers, math_eq) == HALF                       # one half: 3 votes beat 2
    # weights: one half 0.3 * 3 = 0.9 < one third 0.5 * 2 = 1.0; then 1.2 > 1.0
    assert weighted_vote(answers, [0.3, 0.3, 0.3, 0.5, 0.5], math_eq) == THIRD
    assert weighted_vote(answers, [0.4, 0.4, 0.4, 0.5, 0.5], math_eq) == HALF
    assert weighted_vote(answers, [0.4, 0.4, 0.4, 0.5, 0.5]) == THIRD   # raw: 0.4 each vs 1.0
    assert majority_vote([None, None], math_eq) is None


def test_bon_curve_votes_over_equivalence_groups(math_eq):
    pool = [Candidate(a, a != THIRD, 0.0) for a in [HALF, DHALF, "0.5", THIRD, THIRD]]
    assert bon_accuracy_curve([pool], [5], "majority") == {5: 0.0}      # raw: the wrong 1/3 wins
    assert bon_accuracy_curve([pool], [5], "majority", equivalent=math_eq) == {5: 1.0}
    # subsets of 3 vote over the whole pool's groups: the right group wins unless the subset holds
    # both 1/3s (a 2-1 loss) -> C(3,1) = 3 of C(5,3) = 10 subsets lose; 400 draws land near 0.7
    got = bon_accuracy_curve([pool], [3], "majority", rng=0, resamples=400, equivalent=math_eq)[3]
    assert abs(got - 0.7) < 0.08


def sol(answer, score, correct=False):
    return Solution(steps=["s"], step_scores=[score], score=score, answer=answer, correct=correct)


def test_search_select_groups_by_the_problems_task(math_eq):
    pool = [sol(THIRD, 0.5), sol(THIRD, 0.6), sol(HALF, 0.2), sol(DHALF, 0.3), sol("0.5", 0.4), sol(None, 0.9)]
    assert select(pool, "majority") == 1                    # raw: 1/3 (2 votes); best holder index 1
    assert select(pool, "majority", math_eq) == 4           # one half (3 votes); best holder "0.5" at 0.4
    assert select(pool, "weighted", math_eq) == 1           # 1/3: 1.1 > one half: 0.9
    assert task_equivalence(Problem(id="p", prompt="q", answer="5", task="gym")) is None
    eq = task_equivalence(Problem(id="p", prompt="q", answer="0.5", task="math"))
    assert select(pool, "majority", eq) == 4


def test_eval_bon_task_option(capsys):
    from prmkit.errors import InputError
    from prmkit.evaluate.bon import EvalBonConfig, vote_equivalence

    assert vote_equivalence(EvalBonConfig()) is None and capsys.readouterr().out == ""   # gym: silent, exact
    assert vote_equivalence(EvalBonConfig(data="x.jsonl")) is None
    assert "--task math" in capsys.readouterr().out
    assert vote_equivalence(EvalBonConfig(data="x.jsonl", task="math"))(HALF, "0.5") is True
    with pytest.raises(InputError, match="unknown task"):
        vote_equivalence(EvalBonConfig(task="algebra"))
