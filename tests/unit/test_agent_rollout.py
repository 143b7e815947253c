"""Multi-turn rollouts on a tiny random agent policy: episodes are seeded per episode (not per batch),
the token record matches the text, sampled log-probabilities equal teacher forcing, and observation
tokens carry no weight in the policy loss."""

from __future__ import annotations

import pytest
import torch

from prmkit.agents.hopgym import make_env, make_split
from prmkit.agents.hopgym.train_policy import AGENT_CHARS
from prmkit.agents.rollout import RolloutParams, rollout
from prmkit.policy.hf import HFSampler
from prmkit.rl.losses import ppo_clip_loss


@pytest.fixture(scope="module")
def agent_sampler():
    from transformers import LlamaForCausalLM

    from prmkit.gym.tokenizer import build_char_tokenizer
    from prmkit.gym.train_policy import model_config

    tok = build_char_tokenizer(AGENT_CHARS)
    torch.manual_seed(0)
    model = LlamaForCausalLM(model_config(tok, 32, 2, 2, 1024))
    # bias the head toward newline so random actions end within a few tokens
    with torch.no_grad():
        model.lm_head.weight[tok.convert_tokens_to_ids("\n")] += 0.3
    return HFSampler(model, tok, batch_size=64)


PARAMS = RolloutParams(k=3, max_turns=3, max_action_tokens=10, seed=7)


def _key(results):
    return {(ep.problem_id, ep.meta["k"]): ([(t.action, t.observation) for t in ep.turns], toks.ids, toks.logprobs)
            for ep, toks in results}


def test_episodes_do_not_depend_on_batching_or_order(agent_sampler):
    problems = make_split("dev", 4)
    a = _key(rollout(agent_sampler, problems, make_env, PARAMS))
    agent_sampler.batch_size = 1
    try:
        b = _key(rollout(agent_sampler, problems[::-1][:3], make_env, PARAMS))
    finally:
        agent_sampler.batch_size = 64
    assert len(a) == 12 and len(b) == 9
    for key, value in b.items():
        assert value[0] == a[key][0] and value[1] == a[key][1]
        assert value[2] == pytest.approx(a[key][2], abs=1e-5)


def test_token_record_matches_text_and_teacher_forcing(agent_sampler):
    problems = make_split("dev", 2)
    exact = 0
    for ep, toks in rollout(agent_sampler, problems, make_env, PARAMS):
        tok = agent_sampler.tokenizer
        assert len(toks.ids) == len(toks.action_mask) == len(toks.logprobs)
        # the tokens the policy generated, decoded, are its action lines (with their newlines)
        actions = tok.decode([i for i, m in zip(toks.ids, toks.action_mask) if m])
        assert actions.replace("\n", "") == "".join(t.action for t in ep.turns)
        # the whole record decodes to the episode's text (an episode the policy ended with EOS has no newline)
        if tok.eos_token_id not in toks.ids:
            assert tok.decode(toks.ids[toks.prompt_len:]) == ep.text()[len(ep.prompt):]
            exact += 1
        ids = torch.tensor([toks.ids])
        with torch.no_grad():
            logits = agent_sampler.model(input_ids=ids).logits[0, :-1].float()
        tf = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]  # (T-1,)
        pos = [i for i, m in enumerate(toks.action_mask) if m]
        got = torch.tensor([toks.logprobs[i] for i in pos])
        assert float((tf[torch.tensor(pos) - 1] - got).abs().max()) < 1e-4
    assert exact >= 3


def test_observation_tokens_get_no_gradient(agent_sampler):
    """Perturbing advantages and old log-probabilities on observation tokens changes neither the loss
    nor its gradient, and the loss's gradient at observation positions is exactly zero."""
    problems = make_split("dev", 1)
    ep, toks = rollout(agent_sampler, problems, make_env, PARAMS)[0]
    assert 0 in toks.action_mask[toks.prompt_len:] or len(ep.turns) == 1  # observations were appended
    ids = torch.tensor([toks.ids])
    mask = torch.tensor([toks.action_mask[1:]], dtype=torch.bool)  # (1, T-1) aligned with next-token logprobs
    old = torch.tensor([toks.logprobs[1:]])
    adv = torch.randn(mask.shape, generator=torch.Generator().manual_seed(0))

    def loss_and_grad(adv, old):
        logits = agent_sampler.model(input_ids=ids).logits[:, :-1].float().detach().requires_grad_(True)
        lp = torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None])[..., 0]
        loss, _ = ppo_clip_loss(lp, old, adv, mask)
        loss.backward()
        return loss.item(), logits.grad

    l1, g1 = loss_and_grad(adv, old)
    noise = torch.where(mask, torch.zeros_like(adv), torch.full_like(adv, 5.0))
    l2, g2 = loss_and_grad(adv + noise, old - noise)
    assert l1 == pytest.approx(l2, abs=1e-7) and torch.equal(g1, g2)
    assert float(g1[0][~mask[0]].abs().max()) == 0.0
    assert float(g1[0][mask[0]].abs().max()) > 0.0
