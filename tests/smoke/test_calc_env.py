"""The second environment of docs/agents.md (calculator only) through the same rollout engine and agent RL."""

from __future__ import annotations

import json

import pytest

from prmkit.agents.calc_env import calc_task, gold, make_problem, subexpression_values
from prmkit.agents.env import get_env_task, run_episode
from prmkit.agents.rl import AgentRLConfig, run
from prmkit.errors import InputError
from prmkit.schema import write_records
from tests.smoke.test_agent_rl import tiny_agent  # noqa: F401  (fixture)


def test_calc_env_by_hand():
    p = make_problem(0)
    expr = p.prompt[2:].strip()
    a, rest = expr[1:].split("*", 1)
    b, rest = rest.split("+", 1)
    c, d = rest.split(")*")
    first = int(a) * int(b)
    assert p.answer == str((first + int(c)) * int(d))
    assert subexpression_values(expr) == {str(first), str(first + int(c)), p.answer}
    actions = [f"C:{a}*{b}", f"C:{a}*{b}", "C:1+", f"C:{first + int(c)}*{d}", f"A:{p.answer}"]
    prompt, turns, finished = run_episode(calc_task().make_env(p), actions)
    assert finished and turns[0].observation == f"O:{first}" and turns[2].observation == "O:error"
    g = gold(p, actions)
    assert [t["useful"] for t in g] == [True, False, False, True, True]
    assert [t["redundant"] for t in g] == [False, True, False, False, False]
    assert [t["wrong"] for t in g] == [False, False, True, False, False]


def test_env_by_module_path_and_unknown_names():
    assert get_env_task("prmkit.agents.calc_env:calc_task").name == "calc"
    with pytest.raises(InputError, match="unknown environment"):
        get_env_task("nope")
    with pytest.raises(InputError, match="cannot load environment"):
        get_env_task("nope.module:factory")


def test_agent_rl_on_the_calc_env(tmp_path, tiny_agent):  # noqa: F811
    write_records(tmp_path / "train.jsonl", [make_problem(i) for i in range(4)])
    write_records(tmp_path / "test.jsonl", [make_problem(100 + i) for i in range(3)])
    cfg = AgentRLConfig(out=str(tmp_path / "run"), env="calc", model=tiny_agent, method="igpo",
                        problems=str(tmp_path / "train.jsonl"), eval_problems_file=str(tmp_path / "test.jsonl"),
                        steps=2, prompts_per_step=2, k=2, max_turns=3, max_action_tokens=8, eval_every=0, minibatch=2)
    records = run(cfg)
    assert [r["step"] for r in records] == [0, 1, 2]
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2


def test_env_without_built_in_problems_needs_a_file(tmp_path):
    with pytest.raises(InputError, match="has no built-in problems: pass --eval-problems-file"):
        from prmkit.agents.rl import AgentRLRun

        AgentRLRun(AgentRLConfig(out=str(tmp_path / "x"), env="calc", model=str(tmp_path / "missing")))
