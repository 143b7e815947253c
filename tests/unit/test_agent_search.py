"""Turn-level search's pure pieces by hand: top-N, the episode pick (prm, majority, weighted vote),
ReARTeR's TD look-ahead correction, the gold checker as a turn reward model, and bad options."""

from __future__ import annotations

import pytest

from prmkit.agents.env import Episode, Turn, get_env_task, run_episode
from prmkit.agents.hopgym import make_env, make_problem, oracle_actions, world_of
from prmkit.agents.search import CheckerTurnRM, lookahead_value, make_turn_rm, select_episode, top_n
from prmkit.agents.search_run import AgentSearchConfig
from prmkit.errors import InputError


def test_top_n_is_stable_on_ties():
    assert top_n([0.2, 0.9, 0.9, 0.1], 2) == [1, 2]
    assert top_n([0.5, 0.5, 0.5], 5) == [0, 1, 2]
    assert top_n([], 3) == []


def test_select_episode_rules_by_hand():
    scores = [0.1, 0.4, 0.4, 0.9, 0.3]
    answers = ["a", "b", "b", None, "a"]
    assert select_episode(scores, answers, "prm") == 3  # the unanswered episode scores highest
    # majority: a and b both have 2 votes; the first voted episode with a top answer is 0 ("a")
    assert select_episode(scores, answers, "majority") == 0
    # weighted: a = 0.1 + 0.3 = 0.4, b = 0.4 + 0.4 = 0.8 -> the first "b" episode
    assert select_episode(scores, answers, "weighted") == 1
    assert select_episode([0.2, 0.7], [None, None], "majority") == 1  # no answers: falls back to prm
    with pytest.raises(ValueError):
        select_episode(scores, answers, "vote")


def test_lookahead_value_by_hand():
    # deltas 1.0, 0.5, 0.02 (< 0.05 at t = 2): V2 = 1.5 + 0.5 (1.52 - 1.5) = 1.51,
    # V1 = 1 + 0.5 (1.51 - 1) = 1.255, V0 = 0 + 0.5 (1.255 - 0) = 0.6275
    assert lookahead_value([0.0, 1.0, 1.5, 1.52]) == pytest.approx(0.6275)
    # a drop at t = 0 stops at once: V0 = 1 + 0.5 (0.5 - 1) = 0.75; what follows is ignored
    assert lookahead_value([1.0, 0.5, 2.0]) == pytest.approx(0.75)
    # no stop: V1 = 1 + 0.5 (2 - 1) = 1.5, V0 = 0 + 0.5 x 1.5 = 0.75
    assert lookahead_value([0.0, 1.0, 2.0]) == pytest.approx(0.75)
    assert lookahead_value([0.3]) == 0.3
    assert lookahead_value([0.0, 1.0], alpha=0.0) == 0.0
    assert lookahead_value([0.0, 0.04, 1.0], min_gain=0.05) == pytest.approx(0.02)


def _episode(problem, actions):
    prompt, turns, finished = run_episode(make_env(problem), actions)
    return Episode(problem_id=problem.id, prompt=problem.prompt, turns=turns, finished=finished)


def test_checker_scores_are_one_minus_wrong_and_flip_keyed_by_prefix():
    task = get_env_task("hopgym")
    problem = make_problem("dev", 3)
    world, question = world_of(problem)
    actions = oracle_actions(world, question)
    bad = ["S:Q00 bogus"] + actions[:-1] + ["A:nope"]
    eps = [_episode(problem, actions), _episode(problem, bad)]
    got = CheckerTurnRM(task).score([problem] * 2, eps)
    expect = [[0.0 if g["wrong"] else 1.0 for g in task.gold(problem, [t.action for t in e.turns])] for e in eps]
    assert got == expect and got[0] == [1.0] * len(actions) and got[1][0] == 0.0 and got[1][-1] == 0.0
    # the RL loop's checker gives the same verdicts on the same episodes
    from prmkit.agents.rl_step import turn_checker_scores

    for e in eps:
        for t, g in zip(e.turns, task.gold(problem, [t.action for t in e.turns])):
            t.gold = g
    rl = turn_checker_scores(eps, "checker", 0, 0)
    assert [row[: len(g)].tolist() for row, g in zip(rl, got)] == got
    assert CheckerTurnRM(task, flip=1.0).score([problem] * 2, eps) == [[1.0 - s for s in r] for r in got]
    noisy = CheckerTurnRM(task, flip=0.5, seed=1)
    first = noisy.score([problem], eps[:1])[0]
    # a prefix's verdict does not depend on what follows it
    assert noisy.score([problem], [_episode(problem, actions[:2])])[0] == first[:2]


def test_bad_options_fail_before_any_model_loads():
    task = get_env_task("hopgym")
    for spec in ("checker:2", "checker:x", "checker:-0.1"):
        with pytest.raises(InputError, match="flip rate"):
            make_turn_rm(spec, task)
    with pytest.raises(InputError, match="no turn gold"):
        CheckerTurnRM(type("T", (), {"gold": None, "name": "mine"})())
    for kw, field in ((dict(method="dfs"), "method"), (dict(select="vote"), "select"),
                      (dict(aggregation="max"), "aggregation"), (dict(n=0), "n"),
                      (dict(lookahead=2), "lookahead")):
        with pytest.raises(InputError) as e:
            AgentSearchConfig(**kw)
        assert e.value.field == field
