"""Correctness of the RL policy update on real gym rollouts of the shipped policy.

1. the sampler's own logprobs equal the training forward's (`response_logprobs`) for the same
   response tokens (left-padded prompts of different lengths, EOS included), so the PPO ratio is 1
   before the first update;
2. one plain-SGD step on the PPO loss with advantage +1 on one response and -1 on another raises
   the first's log-likelihood and lowers the second's;
3. advantages sit on the right rows: every row's prompt, response tokens and graded outcome are
   those of the sampler's `[prompt][sample]` output, and its GRPO advantage is the one computed by
   hand from its own group's outcomes.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from prmkit.gym.task import parse_prompt
from prmkit.rl.config import RLConfig
from prmkit.rl.methods import compute_advantages
from prmkit.rl.trainer import RLRun
from prmkit.rl.losses import ppo_clip_loss
from prmkit.rl.rollout import response_logprobs


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """(run, batch, sampler groups) of one real rollout: 4 prompts x 4 samples, 2-5 operations."""
    torch.manual_seed(0)
    cfg = RLConfig(out=str(tmp_path_factory.mktemp("rlupd")), reward="grpo", steps=1, prompts_per_step=4, k=4,
                   max_new_tokens=64, eval_problems=4, tensorboard=False, save_policy=False, minibatch=16,
                   gym_max_ops=5, split="dev", threads=1)
    run = RLRun(cfg)
    seen = []
    sample = run.sampler.sample

    def recording(*args, **kwargs):
        out = sample(*args, **kwargs)
        seen.append(out)
        return out

    run.sampler.sample = recording
    batch = run.rollout(0)
    run.sampler.sample = sample
    batch.loss_rows = torch.ones(batch.batch_size, dtype=torch.bool)
    return run, batch, seen[0]


def test_sampler_logprobs_equal_training_forward(captured):
    run, batch, groups = captured
    comps = [c for g in groups for c in g]  # flattened [prompt][sample] order
    assert len(comps) == batch.batch_size
    prompt_lens = {len(run.sampler.encode_prompt(p)) for p in batch.prompts}
    assert len(prompt_lens) > 1, "the check needs left padding: prompts of different lengths"
    with torch.no_grad():
        lp = response_logprobs(run.policy, batch)  # (B,T)
    P = batch.prompt_len
    for b, c in enumerate(comps):
        n = len(c.token_ids)
        assert int(batch.response_mask[b].sum()) == n
        assert batch.input_ids[b, P:P + n].tolist() == list(c.token_ids)
        if c.finish_reason == "stop" and c.stop is None:
            assert c.token_ids[-1] == run.tokenizer.eos_token_id  # EOS is a trained response token
        assert torch.allclose(lp[b, :n], torch.tensor(c.logprobs), atol=1e-4), b
        assert bool((lp[b, n:] == 0).all())  # nothing after the response
    # hence the PPO ratio is exactly 1 before the first update
    batch.old_logprobs = lp
    batch.advantages = compute_advantages("grpo", batch, run.cfg, 0, batch.outcomes)
    with torch.no_grad():
        _, st = ppo_clip_loss(response_logprobs(run.policy, batch), lp, batch.advantages, batch.response_mask)
    assert abs(float(st["ratio_mean"]) - 1.0) < 1e-5 and float(st["clip_frac"]) == 0.0


def test_one_sgd_step_moves_likelihoods_with_the_advantage_sign(captured):
    run, batch, _ = captured
    import copy

    policy = copy.deepcopy(run.policy)
    with torch.no_grad():
        old = response_logprobs(policy, batch)  # (B,T)
    # a long and a short response, so token-mean normalisation cannot hide a wrong sign
    lengths = batch.response_mask.sum(-1)
    up, down = int(lengths.argmax()), int(lengths.argmin())
    assert up != down
    for a_up, a_down in ((1.0, -1.0), (-1.0, 1.0)):
        model = copy.deepcopy(policy)
        adv = torch.zeros(batch.response_mask.shape)
        adv[up], adv[down] = a_up, a_down
        adv = torch.where(batch.response_mask, adv, torch.zeros_like(adv))
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        loss, _ = ppo_clip_loss(response_logprobs(model, batch), old, adv, batch.response_mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            new = response_logprobs(model, batch)
        delta = (new - old).sum(-1)  # (B,) change of each response's log-likelihood
        assert float(delta[up]) * a_up > 0, (a_up, float(delta[up]))
        assert float(delta[down]) * a_down > 0, (a_down, float(delta[down]))


def test_advantages_sit_on_the_rows_of_their_group(captured):
    run, batch, groups = captured
    comps = [(g, c) for g, group in enumerate(groups) for c in group]
    adv = compute_advantages("grpo", batch, run.cfg, 0, batch.outcomes)  # (B,T)
    by_group: dict[int, list[int]] = {}
    for b, (g, c) in enumerate(comps):
        assert int(batch.groups[b]) == g
        assert batch.texts[b] == c.text
        # the row's outcome is the gym grader's verdict on that row's own text
        chain = parse_prompt(batch.prompts[b])
        stated = [line[2:] for line in c.text.split("\n") if line.startswith("A:") and line[2:].lstrip("-").isdigit()]
        want = 1.0 if stated and int(stated[-1]) == chain.values()[-1] else 0.0
        assert float(batch.outcomes[b]) == want, (b, c.text)
        by_group.setdefault(g, []).append(b)
    assert len({batch.prompts[b] for b in by_group[0]}) == 1
    for g, rows in by_group.items():
        rewards = [float(batch.outcomes[b]) for b in rows]
        mean = sum(rewards) / len(rewards)
        sd = statistics.stdev(rewards)
        for b in rows:
            n = int(batch.response_mask[b].sum())
            expected = (float(batch.outcomes[b]) - mean) / (sd + 1e-6)
            assert torch.allclose(adv[b, :n], torch.full((n,), expected), atol=1e-5)
            assert bool((adv[b, n:] == 0).all())
