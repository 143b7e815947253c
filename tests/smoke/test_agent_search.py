"""`prmkit agent search` on hopgym: best-of-N and beam (with and without look-ahead) run end to end on a
tiny random policy with the gold checker; with a scripted policy whose candidates are the oracle's next
action or a wrong answer, the checker steers beam and best-of-N to a right episode whenever one exists."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch

from prmkit.agents.env import get_env_task
from prmkit.agents.hopgym import make_split, oracle_actions, world_of
from prmkit.agents.search import TurnSearchParams, beam, best_of_n, make_turn_rm
from prmkit.agents.search_run import AgentSearchConfig, run
from prmkit.policy.base import Completion, SamplerStats
from prmkit.rewards.aggregate import aggregate


# the tiny random agent policy fixture of the agent RL smoke tests (a saved LlamaForCausalLM + char tokenizer)
from tests.smoke.test_agent_rl import tiny_agent  # noqa: E402,F401


@pytest.mark.parametrize("kw", [dict(method="best-of-n", select="prm"), dict(method="best-of-n", select="weighted"),
                                dict(method="beam"), dict(method="beam", lookahead=2, turn_rm="checker:0.2")])
def test_search_runs_on_hopgym_with_the_checker(tmp_path, tiny_agent, kw):
    out = tmp_path / "s"
    summary = run(AgentSearchConfig(out=str(out), model=tiny_agent, num_problems=2, n=3, m=2, max_turns=3,
                                    max_action_tokens=8, **kw))
    saved = json.loads((out / "results.json").read_text())
    assert saved["success"] == summary["success"] and 0.0 <= saved["success"] <= saved["oracle_success"] <= 1.0
    c = saved["compute"]
    assert c["policy_tokens"] > 0 and c["policy_forward_tokens"] >= c["policy_tokens"] and c["forward_measured"]
    rows = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    task = get_env_task("hopgym")
    problems = {p.id: p for p in make_split("test", 2)}
    for r in rows:
        assert len(r["scores"]) == len(r["candidates"]) >= 1
        if kw.get("turn_rm", "checker") == "checker" and kw.get("select", "prm") == "prm":
            # the chosen episode has the best min-aggregated gold verdict, recomputed here from the gold
            gold = [aggregate([0.0 if g["wrong"] else 1.0 for g in task.gold(problems[r["problem_id"]],
                               [t["action"] for t in e["turns"]])] or [0.0], "min") for e in r["candidates"]]
            assert r["scores"] == gold and r["scores"][r["candidates"].index(r["chosen"])] == max(gold)


class ScriptedPolicy:
    """A text policy for the test: the i-th candidate of a context is a wrong answer `A:nope` when its
    stream's draw is under `p_wrong` (beam: candidate 0 always), else the oracle's next action."""

    sep = "\n"

    def __init__(self, problems, p_wrong=0.5):
        self.oracle = {p.prompt: oracle_actions(*world_of(p)) for p in problems}
        self.p_wrong, self.stats = p_wrong, SamplerStats()

    def _action(self, prompt: str, draw: float) -> str:
        head = next(q for q in self.oracle if prompt.startswith(q))
        done = prompt[len(head):].splitlines()[::2]  # action lines (each followed by its observation)
        return "A:nope" if draw < self.p_wrong else self.oracle[head][len(done)]

    def sample(self, prompts, params, seeds=None):
        out = []
        for prompt, seed in zip(prompts, seeds):
            rng = random.Random(seed)
            group = []
            for j in range(params.n):
                draw = 0.0 if (params.n > 1 and j == 0) else (1.0 if params.n > 1 else rng.random())
                text = self._action(prompt, draw)
                self.stats.generated_tokens += len(text) + 1
                group.append(Completion(text=text, token_ids=[], logprobs=[], steps=[text], finish_reason="stop",
                                        stop="\n"))
            out.append(group)
        return out


def test_checker_steers_beam_and_best_of_n_to_right_episodes():
    task = get_env_task("hopgym")
    problems = make_split("dev", 6)
    policy = ScriptedPolicy(problems)
    p = TurnSearchParams(n=1, m=2, max_turns=12)
    for r in beam(policy, task, problems, make_turn_rm("checker", task), p):
        assert r.chosen.outcome == 1.0 and r.chosen.answer is not None
    # every verdict flipped: the beam follows the wrong answer and fails every problem
    assert all(r.chosen.outcome == 0.0 for r in beam(policy, task, problems, make_turn_rm("checker:1", task), p))
    results = best_of_n(ScriptedPolicy(problems, p_wrong=0.3), task, problems, make_turn_rm("checker", task),
                        TurnSearchParams(n=4, max_turns=12))
    hits = [any(e.outcome == 1.0 for e in r.candidates) for r in results]
    assert any(hits) and not all(hits)
    assert all(sum(e.outcome for e in r.candidates) < len(r.candidates) for r in results)  # wrong ones to avoid
    assert [r.chosen.outcome == 1.0 for r in results] == hits  # picks a right episode whenever one exists


def test_cli_agent_search(tmp_path, tiny_agent):
    from typer.testing import CliRunner

    from prmkit.cli import _register, app

    _register()
    out = tmp_path / "cli"
    args = ["agent", "search", "--out", str(out), "--model", tiny_agent, "--method", "beam", "--n", "2", "--m", "2",
            "--num-problems", "1", "--max-turns", "2", "--max-action-tokens", "6"]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "policy tokens" in res.output and json.loads((out / "results.json").read_text())["method"] == "beam"
    # a bad turn RM fails at the error boundary, naming the field, before the (missing) policy is read
    bad = subprocess.run([sys.executable, "-m", "prmkit.cli", "agent", "search", "--out", str(tmp_path / "bad"),
                          "--model", str(tmp_path / "missing"), "--turn-rm", "checker:3"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PRMKIT_QUIET": "1"})
    assert bad.returncode == 2 and "flip rate" in bad.stderr and not (tmp_path / "bad").exists()


def test_search_with_a_prm_trained_on_turn_traces(tmp_path, tiny_agent):
    """A turn PRM (trained here on gym turn traces) drives best-of-N and beam; the scores search records
    are the PRM's own scores of each candidate's turn trace, recomputed here."""
    from prmkit.agents.env import Episode, Turn
    from prmkit.agents.turns import episode_trace
    from prmkit.rewards import load_reward_model
    from prmkit.rewards.base import score_traces
    from prmkit.train.prm import TrainPRMConfig
    from prmkit.train.prm import run as train_prm
    from tests.smoke.test_turn_rm import _turn_traces

    data = _turn_traces(tmp_path / "train" / "turns.jsonl", "train", 6, 2)
    prm_dir = tmp_path / "prm"
    train_prm(TrainPRMConfig(out=str(prm_dir), data=str(data), model=tiny_agent, epochs=1.0, batch_size=8,
                             loglik_feature=False, fit_data=str(data)))
    rm = load_reward_model(prm_dir)
    for method in ("best-of-n", "beam"):
        out = tmp_path / method
        summary = run(AgentSearchConfig(out=str(out), model=tiny_agent, method=method, turn_rm=str(prm_dir),
                                        num_problems=1, n=2, m=2, max_turns=2, max_action_tokens=6))
        assert summary["compute"]["prm_tokens"] > 0
        row = json.loads((out / "episodes.jsonl").read_text().splitlines()[0])
        eps = [Episode(**{**e, "turns": [Turn(**t) for t in e["turns"]]}) for e in row["candidates"]]
        again = score_traces(rm, [episode_trace(e, labels="none") for e in eps])
        # best-of-N scored whole traces, beam each turn on its own prefix as it was made; a causal PRM's
        # score of a turn does not depend on what follows, so both equal the min over the whole trace's scores
        assert row["scores"] == pytest.approx([min(s) for s in again], abs=1e-5)
