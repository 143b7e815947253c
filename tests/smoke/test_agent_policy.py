"""hopgym's agent-policy trainer: loss on action tokens only, a killed run resumes to the same weights."""

from __future__ import annotations

import pytest
import torch

from prmkit.agents.hopgym import train_policy as tp
from prmkit.errors import InputError

TINY = dict(steps=6, batch_size=4, hidden_size=16, num_layers=1, num_heads=2, warmup=2, save_every=3)


def test_loss_mask_covers_actions_only():
    from prmkit.gym.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer(tp.AGENT_CHARS)
    ids, attn, mask = tp.batch(tok, 0, 0, 3, 0.3)
    for row in range(3):
        text = tok.decode(ids[row][attn[row].bool()], skip_special_tokens=True)
        acted = tok.decode(ids[row][mask[row]])
        lines = text.splitlines()
        assert acted == "".join(line + "\n" for line in lines[1:] if not line.startswith("O:"))


def _weights(path):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(path).state_dict()


def test_killed_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    full = tp.run(tp.AgentPolicyConfig(out=str(tmp_path / "full"), **TINY))
    real = tp.batch
    seen = []

    def dies_at_step_4(tok, seed, step, size, p):
        if step == 4:
            raise KeyboardInterrupt
        seen.append(step)
        return real(tok, seed, step, size, p)

    monkeypatch.setattr(tp, "batch", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        tp.run(tp.AgentPolicyConfig(out=str(tmp_path / "cut"), **TINY))
    monkeypatch.setattr(tp, "batch", lambda *a: (seen.append(a[2]), real(*a))[1])
    with pytest.raises(InputError, match="lr"):
        tp.run(tp.AgentPolicyConfig(out=str(tmp_path / "cut"), **{**TINY, "lr": 1e-3}))
    resumed = tp.run(tp.AgentPolicyConfig(out=str(tmp_path / "cut"), **TINY))
    assert seen == [0, 1, 2, 3, 3, 4, 5]  # the checkpoint after step 3 holds steps 0-2; only the rest ran again
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
