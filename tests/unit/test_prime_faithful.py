"""PRIME faithful to its reference code (verl `recipe/prime`, PRIME-RL/PRIME `training/`): hand-computed
batch_norm, granularity, the reference's leave-one-out on process rewards, pairwise ranking accuracy,
and refill sampling (exactly the requested passing prompts; seeded draws)."""

from __future__ import annotations

import pytest
import torch

from prmkit.errors import InputError
from prmkit.rl.advantages import prime_advantages, prime_reference_process_loo, rloo_advantages
from prmkit.rl.filtering import accuracy_filter, prompt_stream, refill_draws
from prmkit.rl.prime import apply_granularity, batch_norm_rewards, batch_norm_scale, rank_accuracy

T_ = torch.tensor


def test_batch_norm_divides_by_the_largest_absolute_reverse_cumsum():
    r = T_([[1.0, -2.0, 3.0], [0.5, 0.5, 100.0]])
    mask = T_([[1, 1, 1], [1, 1, 0]]).bool()
    # reverse cumsums: row 0 -> [2, 1, 3], row 1 -> [1, 0.5, 0] (padding ignored): the largest |.| is 3
    assert batch_norm_scale(r, mask, eps=0.0) == pytest.approx(3.0)
    out = batch_norm_rewards(r, mask, eps=0.0)
    assert torch.allclose(out, T_([[1 / 3, -2 / 3, 1.0], [1 / 6, 1 / 6, 0.0]]))
    # a negative running sum can set the scale: [-4, 1] -> reverse cumsums [-3, 1]
    assert batch_norm_scale(T_([[-4.0, 1.0]]), T_([[1, 1]]).bool(), eps=0.0) == pytest.approx(3.0)


def test_granularity_token_keeps_every_token_whole_puts_the_sum_on_the_last():
    r = T_([[1.0, 2.0, 3.0], [4.0, 5.0, 7.0]])
    mask = T_([[1, 1, 1], [1, 1, 0]]).bool()
    assert torch.equal(apply_granularity(r, mask, "token"), T_([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]]))
    assert torch.equal(apply_granularity(r, mask, "whole"), T_([[0.0, 0.0, 6.0], [0.0, 9.0, 0.0]]))
    with pytest.raises(InputError):
        apply_granularity(r, mask, "step")


def test_reference_leave_one_out_has_the_self_centring_term():
    # one group of K=3: rows a=[1,3] (mean 2), b=[4] (mean 4), c=[0,0] (mean 0)
    r = T_([[1.0, 3.0], [4.0, 9.0], [0.0, 0.0]])
    mask = T_([[1, 1], [1, 0], [1, 1]]).bool()
    out = prime_reference_process_loo(r, mask, 3)
    # r * K/(K-1) - (2 + 4 + 0)/(K-1) = 1.5 r - 3
    assert torch.allclose(out, T_([[-1.5, 1.5], [3.0, 0.0], [-3.0, -3.0]]))
    # = paper baseline r_t - mean of the others' means, plus (r_t - mean_i)/(K-1): row a, token 0
    assert out[0, 0].item() == pytest.approx(1 - (4 + 0) / 2 + (1 - 2) / 2)
    # inside PRIME's advantage: reverse cumsum of the process term + RLOO on the outcomes
    outcomes = T_([1.0, 0.0, 0.0])
    adv = prime_advantages(outcomes, r, mask, 3, process_loo="reference")
    rloo = rloo_advantages(outcomes, 3)  # [1, -0.5, -0.5]
    expected = T_([[0.0, 1.5], [3.0, 0.0], [-6.0, -3.0]]) + rloo[:, None] * mask
    assert torch.allclose(adv, expected)
    # the paper's form differs exactly by the self-centring term's returns
    paper = prime_advantages(outcomes, r, mask, 3, process_loo="paper")
    assert not torch.allclose(adv, paper)
    with pytest.raises(InputError):
        prime_advantages(outcomes, r, mask, 3, process_loo="other")


def test_pairwise_ranking_accuracy_by_hand():
    # group 0: pairs (0,1) right (weight 1), (0,2) same outcome (weight 0), (1,2) right -> 1.0
    # group 1: the correct response scored lower -> 0.0; group 2: all outcomes equal -> 0.5
    scores = T_([3.0, 1.0, 2.0, 0.0, 5.0, 1.0, 2.0])
    outcomes = T_([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    groups = T_([0, 0, 0, 1, 1, 2, 2])
    assert rank_accuracy(scores, outcomes, groups) == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    # a tie counts as "i not above j", as in the reference: right when a_i < a_j, wrong when a_i > a_j
    assert rank_accuracy(T_([1.0, 1.0]), T_([0.0, 1.0]), T_([0, 0])) == 1.0
    assert rank_accuracy(T_([1.0, 1.0]), T_([1.0, 0.0]), T_([0, 0])) == 0.0
    # brute force over pairs with soft outcomes agrees on a random group
    g = torch.Generator().manual_seed(0)
    s, a = torch.randn(6, generator=g), torch.rand(6, generator=g)
    num = sum(abs(a[i] - a[j]) * float((s[i] > s[j]) == (a[i] > a[j])) for i in range(6) for j in range(i + 1, 6))
    den = sum(abs(a[i] - a[j]) for i in range(6) for j in range(i + 1, 6))
    assert rank_accuracy(s, a, torch.zeros(6, dtype=torch.long)) == pytest.approx(float(num / den))


def _fake_round(flags):
    calls = []

    def sample_round(positions):
        calls.append(list(positions))
        return [(flags[p], f"payload{p}") for p in positions]
    return sample_round, calls


def test_refill_keeps_exactly_the_first_passing_prompts_whatever_the_round_size():
    flags = [False, True, False, False, True, True, False, True, True, True]
    fn, calls = _fake_round(flags)
    res = refill_draws(fn, need=3, stream_len=10, oversample=1.0)
    # round 1 draws 3 (one passes), round 2 draws 2 (one passes), round 3 draws 1 (passes)
    assert calls == [[0, 1, 2], [3, 4], [5]]
    assert res.kept == [1, 4, 5] and res.passed == [True, True, True] and res.drawn == 6 and res.rounds == 3
    assert [res.results[p] for p in res.kept] == ["payload1", "payload4", "payload5"]
    fn4, calls4 = _fake_round(flags)
    res4 = refill_draws(fn4, need=3, stream_len=10, oversample=4.0)  # one round of min(12, 10) prompts
    assert calls4 == [list(range(10))] and res4.kept == [1, 4, 5] and res4.drawn == 10


def test_refill_tops_up_with_failing_prompts_when_the_stream_runs_out():
    flags = [False, False, True, False]
    fn, _ = _fake_round(flags)
    res = refill_draws(fn, need=3, stream_len=4, oversample=1.0)
    assert res.kept == [0, 1, 2] and res.passed == [False, False, True] and res.drawn == 4
    fn, calls = _fake_round([False] * 100)
    res = refill_draws(fn, need=2, stream_len=100, oversample=1.0, max_rounds=3)
    assert res.rounds == 3 and res.drawn == 6 and res.kept == [0, 1] and res.passed == [False, False]
    with pytest.raises(InputError):
        refill_draws(fn, need=2, stream_len=10, oversample=0.5)


def test_prompt_stream_is_a_seeded_permutation():
    a, b, c = prompt_stream(50, 7), prompt_stream(50, 7), prompt_stream(50, 8)
    assert a == b and a != c and sorted(a) == list(range(50))


def test_accuracy_filter_is_inclusive():
    outcomes = T_([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    keep = accuracy_filter(outcomes, T_([0] * 4 + [1] * 4 + [2] * 4), 0.25, 0.75)
    assert keep.tolist() == [True] * 4 + [False] * 8  # accuracies 0.25 (kept), 1.0, 0.0


def _tiny(out, **kw):
    from prmkit.rl.config import RLConfig

    base = dict(out=str(out), steps=2, prompts_per_step=2, k=4, max_new_tokens=48, eval_problems=4, eval_every=0,
                tensorboard=False, save_policy=False, minibatch=4, threads=1, lr=1e-3, gym_max_ops=3)
    return RLConfig(**{**base, **kw})


def test_refill_rollout_on_the_gym_holds_exactly_the_requested_passing_prompts(tmp_path):
    from prmkit.rl.filtering import group_accuracy
    from prmkit.rl.trainer import RLRun

    run = RLRun(_tiny(tmp_path / "a", reward="rloo", acc_filter="on", refill_oversample=1.0))
    batch = run.rollout(0)
    acc = group_accuracy(batch.outcomes, batch.groups)
    assert len(torch.unique(batch.groups)) == 2 and batch.batch_size == 8
    assert bool(((acc >= 0.2) & (acc <= 0.8)).all())
    assert run.refill_info["refill/passing_prompts"] == 2 and run.refill_info["refill/drawn_prompts"] >= 2
    # seeded: the same draws again, and the same batch with another round size
    again = run.rollout(0).input_ids
    wide = RLRun(_tiny(tmp_path / "b", reward="rloo", acc_filter="on", refill_oversample=4.0)).rollout(0).input_ids
    assert torch.equal(batch.input_ids, again) and torch.equal(batch.input_ids, wide)
    other = RLRun(_tiny(tmp_path / "c", reward="rloo", acc_filter="on", seed=1)).rollout(0).input_ids
    assert not torch.equal(batch.input_ids, other)
