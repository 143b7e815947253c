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


@pytest.mark.parametrize("method", sorted(TURN_CREDIT))
def test_every_method_runs_two_steps(tmp_path, tiny_agent, method):
    records = run(_cfg(tmp_path, tiny_agent, method))
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
