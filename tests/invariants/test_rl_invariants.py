"""RL invariants on real gym rollouts: PRIME without the process term is RLOO on outcomes; PURE's
softmax credit at a huge temperature is the uniform (sum-form) credit; kill-and-resume reproduces an
uninterrupted run exactly."""

from __future__ import annotations

import json

import pytest
import torch

from prmkit.rl import advantages as A
from prmkit.rl.config import RLConfig
from prmkit.rl.methods import compute_advantages
from prmkit.rl.trainer import RLRun


def tiny(out, **kw) -> RLConfig:
    base = dict(out=str(out), steps=4, prompts_per_step=2, k=4, max_new_tokens=64, eval_problems=8, eval_every=2,
                prm="checker:0.1", tensorboard=False, save_policy=False, lr=1e-3, minibatch=4, threads=1)
    return RLConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def gym_batch(tmp_path_factory):
    """A real rollout batch of the shipped policy: 4 prompts x 4 samples, step scores from the noisy checker."""
    run = RLRun(tiny(tmp_path_factory.mktemp("rl"), reward="pure", prompts_per_step=4))
    batch = run.rollout(0)
    batch.loss_rows = torch.ones(batch.batch_size, dtype=torch.bool)
    return batch


def test_prime_with_zero_process_coef_equals_rloo_on_outcomes(gym_batch):
    g = torch.Generator().manual_seed(0)
    gym_batch.token_rewards = torch.randn(gym_batch.response_mask.shape, generator=g) * gym_batch.response_mask
    for whiten in (False, True):
        # prime whitens by default (its reference code does): here exactly when RLOO does
        prime = compute_advantages("prime", gym_batch, RLConfig(process_coef=0.0, whiten=whiten, prime_whiten=whiten))
        rloo = compute_advantages("rloo", gym_batch, RLConfig(whiten=whiten))
        assert torch.allclose(prime, rloo, atol=1e-6)
    # and the process term does change it when on
    assert not torch.allclose(compute_advantages("prime", gym_batch, RLConfig(process_coef=1.0)),
                              compute_advantages("rloo", gym_batch, RLConfig()), atol=1e-3)


def test_pure_with_huge_temperature_equals_sum_form(gym_batch):
    # min-form weights -> 1/S_i as T -> inf: the whole PURE pipeline (token baseline, VR, returns) then
    # equals PURE with uniform weights, i.e. the sum-form over r_k / S_i (PURE's `disable_weighted_reward`)
    hot = compute_advantages("pure", gym_batch, RLConfig(pure_credit="min", pure_temperature=1e7))
    uniform = compute_advantages("pure", gym_batch, RLConfig(pure_credit="mean"))
    assert torch.allclose(hot, uniform, atol=1e-5)
    # and the per-step credit is exactly the raw sum-form return divided by S_i
    r = 2 * gym_batch.step_scores - 1
    n = gym_batch.step_mask.sum(-1, keepdim=True).clamp(min=1)
    min_ret = A.min_form_returns(r, gym_batch.step_mask, temperature=1e7)
    sum_ret = A.token_returns(torch.where(gym_batch.step_mask, r, torch.zeros_like(r)), gym_batch.step_mask)
    assert torch.allclose(min_ret * n, sum_ret, atol=1e-4)
    # a cold temperature does not (the worst step dominates)
    cold = compute_advantages("pure", gym_batch, RLConfig(pure_credit="min", pure_temperature=0.1))
    assert not torch.allclose(cold, uniform, atol=1e-3)


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _strip(records):
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


@pytest.mark.parametrize("method", ["prime", "pure"])
def test_kill_and_resume_reproduces_the_uninterrupted_run(tmp_path, method):
    full = tmp_path / "full"
    RLRun(tiny(full, reward=method)).train()
    part = tmp_path / "part"
    RLRun(tiny(part, reward=method, stop_after=2)).train()  # stops after step 2 (as if killed)
    assert [r["step"] for r in _records(part)] == [0, 1, 2]
    # a checkpoint from a later step must not survive a restart: metrics past the checkpoint are dropped
    with open(part / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 3, "junk": True}) + "\n")
    RLRun(tiny(part, reward=method)).train()  # resumes from the step-2 checkpoint
    a, b = _strip(_records(full)), _strip(_records(part))
    assert [r["step"] for r in b] == [0, 1, 2, 3, 4]
    assert a[3:] == b[3:]  # steps 3-4 identical, number for number
    assert a == b
