"""With the process coefficient 0, PRIME faithful to its reference code is RLOO with the same accuracy
filter (refill) and the same batch whitening: the same advantages on a batch, the same policy after training."""

from __future__ import annotations

import json

import torch

from prmkit.rl.config import RLConfig
from prmkit.rl.methods import compute_advantages
from prmkit.rl.trainer import RLRun


def tiny(out, **kw) -> RLConfig:
    base = dict(out=str(out), steps=2, prompts_per_step=2, k=4, max_new_tokens=48, eval_problems=4, eval_every=0,
                tensorboard=False, save_policy=False, lr=1e-3, minibatch=4, threads=1, gym_max_ops=3)
    return RLConfig(**{**base, **kw})


def test_faithful_prime_without_process_term_equals_filtered_whitened_rloo(tmp_path):
    prime_cfg = tiny(tmp_path / "prime", reward="prime", process_coef=0.0)  # reference defaults: refill, whiten
    rloo_cfg = tiny(tmp_path / "rloo", reward="rloo", acc_filter="on", acc_filter_mode="refill", whiten=True)
    assert prime_cfg.acc_filter_mode == "refill" and prime_cfg.prime_whiten and prime_cfg.prime_norm == "batch_norm"
    prime, rloo = RLRun(prime_cfg), RLRun(rloo_cfg)
    # the same batch: random process rewards change nothing at coefficient 0
    batch = prime.rollout(0)
    assert torch.equal(batch.input_ids, rloo.rollout(0).input_ids)
    from prmkit.rl.filtering import accuracy_filter

    batch.loss_rows = accuracy_filter(batch.outcomes, batch.groups)
    g = torch.Generator().manual_seed(0)
    batch.token_rewards = torch.randn(batch.response_mask.shape, generator=g) * batch.response_mask
    a_prime = compute_advantages("prime", batch, prime_cfg, 0)
    a_rloo = compute_advantages("rloo", batch, rloo_cfg, 0)
    assert torch.equal(a_prime, a_rloo) and bool(a_rloo.abs().gt(0).any())
    # and the process term does change them when on
    on = tiny(tmp_path / "on", reward="prime")
    assert not torch.allclose(compute_advantages("prime", batch, on, 0), a_rloo, atol=1e-3)
    # end to end: two training steps leave the same policy and the same policy-loss record
    rec_p, rec_r = prime.train(), rloo.train()
    for a, b in zip(prime.policy.parameters(), rloo.policy.parameters()):
        assert torch.equal(a, b)
    for rp, rr in zip(rec_p[1:], rec_r[1:]):
        assert rp["loss"] == rr["loss"] and rp["kept_rows"] == rr["kept_rows"] == 8
        assert rp["sampled_tokens"] == rr["sampled_tokens"]
        assert 0.0 <= rp["prm/rank_acc_before"] <= 1.0 and "prime/process_outcome_corr" in rp
    saved = json.loads((tmp_path / "prime" / "config.json").read_text())
    assert saved["prime_lr"] == 1e-6 and saved["prime_optimizer"] == "adamw"
