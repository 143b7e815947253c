"""Every turn-credit method runs two agent RL steps on a tiny random policy; a killed run resumes."""

from __future__ import annotations

import json

import pytest
import torch

from prmkit.agents.credit import TURN_CREDIT
from prmkit.agents.rl import AgentRLConfig, AgentRLRun, run


@pytest.fixture(scope="module")
def tiny_agent(tmp_path_factory):
    from transformers import LlamaForCausalLM

    from prmkit.agents.hopgym.train_policy import AGENT_CHARS
    from prmkit.gym.tokenizer import build_char_tokenizer
    from prmkit.gym.train_policy import model_config

    tok = build_char_tokenizer(AGENT_CHARS)
    torch.manual_seed(0)
    model = LlamaForCausalLM(model_config(tok, 32, 2, 2, 1024))
    with torch.no_grad():
        model.lm_head.weight[tok.convert_tokens_to_ids("\n")] += 0.5
    d = tmp_path_factory.mktemp("agent")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _cfg(tmp_path, model, method, **kw):
    base = dict(out=str(tmp_path / method), method=method, model=model, steps=2, prompts_per_step=2, k=2,
                max_turns=3, max_action_tokens=8, eval_problems=2, eval_every=0, minibatch=2)
    return AgentRLConfig(**{**base, **kw})


def judging_hopgym():
    """hopgym plus a judge grammar for the test: an action holding 'Y' (or 'N', not both) is the agent's Yes
    (No) on the previous turn's observation; hopgym's own grammar has no judge action."""
    from dataclasses import replace

    from prmkit.agents.env import get_env_task

    def judgements(problem, actions):
        out = [None] * len(actions)
        for k in range(1, len(actions)):
            yes, no = "Y" in actions[k], "N" in actions[k]
            out[k - 1] = yes if yes != no else None
        return out

    return replace(get_env_task("hopgym"), judgements=judgements)


@pytest.mark.parametrize("method", sorted(set(TURN_CREDIT) - {"reseek"}))
def test_every_method_runs_two_steps(tmp_path, tiny_agent, method):
    _two_steps(tmp_path, tiny_agent, method)


def test_reseek_runs_two_steps_where_the_agent_judges_and_is_refused_on_hopgym(tmp_path, tiny_agent):
    from prmkit.errors import InputError

    with pytest.raises(InputError, match="judgement"):
        AgentRLRun(_cfg(tmp_path, str(tmp_path / "not-loaded"), "reseek"))
    from prmkit.agents.hopgym import make_problem
    from prmkit.schema import write_records

    write_records(tmp_path / "train.jsonl", [make_problem("train", i) for i in range(4)])
    write_records(tmp_path / "test.jsonl", [make_problem("test", i) for i in range(2)])
    _two_steps(tmp_path, tiny_agent, "reseek", env="tests.smoke.test_agent_rl:judging_hopgym",
               problems=str(tmp_path / "train.jsonl"), eval_problems_file=str(tmp_path / "test.jsonl"))


def _two_steps(tmp_path, tiny_agent, method, **kw):
    records = run(_cfg(tmp_path, tiny_agent, method, **kw))
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(0.0 <= r["zero_variance_group_share"] <= 1.0 for r in steps)
    assert "eval" in records[0] and "eval" in records[-1]
    lines = (tmp_path / method / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["step"] == 2


def test_resume_runs_only_the_remaining_steps(tmp_path, tiny_agent):
    full = AgentRLRun(_cfg(tmp_path / "a", tiny_agent, "igpo", steps=3))
    full.train()
    part = AgentRLRun(_cfg(tmp_path / "b", tiny_agent, "igpo", steps=3))
    ran = []
    original = part.step

    def killed_at_third(s):
        if s == 2:
            raise KeyboardInterrupt  # the run dies after the second checkpoint
        ran.append(s)
        return original(s)

    part.step = killed_at_third
    with pytest.raises(KeyboardInterrupt):
        part.train()
    resumed = AgentRLRun(_cfg(tmp_path / "b", tiny_agent, "igpo", steps=3))
    ran_after = []
    original2 = resumed.step
    resumed.step = lambda s: (ran_after.append(s), original2(s))[1]
    resumed.train()
    assert ran == [0, 1] and ran_after == [2]
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
