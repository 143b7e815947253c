"""prmkit.rl math: every formula against values computed by hand (arithmetic in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from prmkit.errors import InputError
from prmkit.rl.advantages import (
    grpo_advantages,
    masked_whiten,
    min_form_returns,
    min_form_rewards,
    min_form_weights,
    prime_advantages,
    pure_token_baseline,
    rloo_advantages,
    step_to_token_rewards,
    strict_min_returns,
    token_returns,
)
from prmkit.rl.losses import kl_k1, kl_k2, kl_k3, masked_mean, ppo_clip_loss
from prmkit.rl.shaping import (
    anneal,
    capo_step_rewards,
    capo_vote,
    clip_process_rewards,
    delta_process_rewards,
    inject_reward_noise,
    par_reward,
    pav_effective_reward,
    posterior_gate,
    prof_consistency_scores,
    prof_filter,
    prof_kept_counts,
    renorm,
    trust_weight,
)

T_ = torch.tensor


def close(a, b, atol=1e-5):
    assert torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                          atol=atol), f"{a} != {b}"


# ---------------------------------------------------------------- group baselines (§0.5)

def test_grpo_hand_values():
    # group A = [1,0,0,0]: mean .25, deviations [.75,-.25,-.25,-.25], sum sq = .5625 + 3*.0625 = .75,
    #   unbiased var = .75/3 = .25, std = .5 -> A = [1.5, -.5, -.5, -.5]
    # group B = [1,0,0,1]: mean .5, dev +-.5, var = 4*.25/3 = 1/3, std = .57735 -> A = +-.5/.57735 = +-.866025
    adv = grpo_advantages(T_([1., 0, 0, 0, 1, 0, 0, 1]), 4, eps=0.0)
    close(adv, [1.5, -.5, -.5, -.5, .866025, -.866025, -.866025, .866025])
    # without std: just centred
    close(grpo_advantages(T_([1., 0, 0, 0]), 4, normalize_std=False), [.75, -.25, -.25, -.25])
    # population std (n): var = .75/4 = .1875, std = .433013 -> .75/.433013 = 1.732051, -.25/.433013 = -.577350
    close(grpo_advantages(T_([1., 0, 0, 0]), 4, eps=0.0, unbiased=False), [1.732051, -.57735, -.57735, -.57735])


def test_grpo_group_ids_any_order_and_constant_group():
    # same groups as above, rows interleaved: ids [7,3,7,3,...]; a constant group gives 0 (0/(0+eps))
    rewards = T_([1., 1, 0, 0, 0, 0, 0, 1])
    ids = T_([7, 3, 7, 3, 7, 3, 7, 3])
    # group 7 = rows 0,2,4,6 = [1,0,0,0]; group 3 = rows 1,3,5,7 = [1,0,0,1]
    close(grpo_advantages(rewards, ids, eps=0.0), [1.5, .866025, -.5, -.866025, -.5, -.866025, -.5, .866025])
    close(grpo_advantages(T_([1., 1, 1]), 3), [0., 0, 0])


def test_rloo_hand_values():
    # [1,0,0,0]: A_0 = 1 - (0+0+0)/3 = 1; A_1 = 0 - (1+0+0)/3 = -1/3
    # [2,4]: A_0 = 2 - 4 = -2; A_1 = 4 - 2 = 2
    close(rloo_advantages(T_([1., 0, 0, 0, 2, 4]), T_([0, 0, 0, 0, 1, 1])), [1, -1 / 3, -1 / 3, -1 / 3, -2, 2])
    with pytest.raises(InputError):
        rloo_advantages(T_([1., 0, 1]), T_([0, 0, 1]))  # a group of one has no leave-one-out baseline
    with pytest.raises(InputError):
        rloo_advantages(T_([1., 0, 1]), 2)  # 3 rows do not split into groups of 2


def test_token_returns_hand_values_and_mask():
    # gamma .5 on [1,2,3]: G2 = 3; G1 = 2 + .5*3 = 3.5; G0 = 1 + .5*3.5 = 2.75
    # row 2 = [4, pad, pad] with garbage in the padding: G0 = 4
    rewards = T_([[1., 2, 3], [4., 1e6, float("nan")]])
    mask = T_([[1, 1, 1], [1, 0, 0]]).bool()
    close(token_returns(rewards, mask, 0.5), [[2.75, 3.5, 3], [4, 0, 0]])
    # gamma 1: reverse cumsum [6, 5, 3]
    close(token_returns(rewards, mask, 1.0), [[6, 5, 3], [4, 0, 0]])


def test_masked_whiten_hand_values():
    # real values [1, 3]: mean 2, unbiased var ((1)^2 + (1)^2)/1 = 2 -> [-1/sqrt2, 1/sqrt2]
    out = masked_whiten(T_([[1., 3., 100.]]), T_([[1, 1, 0]]).bool(), eps=0.0)
    close(out, [[-0.707107, 0.707107, 0.]])


# ---------------------------------------------------------------- PRIME (§2)

PRIME_OUT = T_([1., 0.])
PRIME_PROC = T_([[.2, .4, 0.], [.3, -.3, .6]])
PRIME_MASK = T_([[1, 1, 0], [1, 1, 1]]).bool()


def test_prime_hand_values():
    # G = 2, so every leave-one-out mean is "the other sample".
    # outcome RLOO: A_0 = 1 - 0 = 1, A_1 = 0 - 1 = -1
    # per-token mean process reward: s0 (.2+.4)/2 = .3; s1 (.3-.3+.6)/3 = .2
    # process baselines: b_0 = .2 (other = s1), b_1 = .3
    # s0 centred [.2-.2, .4-.2] = [0, .2]; gamma 1 returns [.2, .2] -> A = [1.2, 1.2, pad 0]
    # s1 centred [0, -.6, .3];           gamma 1 returns [-.3, -.3, .3] -> A = [-1.3, -1.3, -.7]
    adv = prime_advantages(PRIME_OUT, PRIME_PROC, PRIME_MASK, 2)
    close(adv, [[1.2, 1.2, 0], [-1.3, -1.3, -.7]])
    # gamma .5 (process only): s0 G1 = .2, G0 = 0 + .5*.2 = .1 -> [1.1, 1.2]
    #   s1 G2 = .3, G1 = -.6 + .15 = -.45, G0 = 0 + .5*(-.45) = -.225 -> [-1.225, -1.45, -.7]
    close(prime_advantages(PRIME_OUT, PRIME_PROC, PRIME_MASK, 2, gamma=0.5),
          [[1.1, 1.2, 0], [-1.225, -1.45, -.7]])
    # coefficients (verl uses 5/5): outcome 5, process 5 -> 5x the gamma-1 values
    close(prime_advantages(PRIME_OUT, PRIME_PROC, PRIME_MASK, 2, process_coef=5.0, outcome_coef=5.0),
          [[6, 6, 0], [-6.5, -6.5, -3.5]])


def test_prime_without_process_equals_rloo_on_outcomes():
    torch.manual_seed(0)
    outcomes = torch.randint(0, 2, (8,)).float()  # (B,)
    proc = torch.randn(8, 6)  # (B,T)
    lengths = T_([6, 3, 5, 1, 6, 2, 4, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]  # (B,T)
    adv = prime_advantages(outcomes, proc, mask, 4, process_coef=0.0, outcome_coef=1.0, gamma=0.9)
    expected = rloo_advantages(outcomes, 4)[:, None] * mask  # (B,T)
    close(adv, expected, atol=1e-6)


def test_prime_padding_does_not_change_result():
    padded_proc = torch.cat([PRIME_PROC, T_([[123.], [-7.]])], dim=1)  # garbage in a new pad column
    padded_mask = torch.cat([PRIME_MASK, T_([[0], [0]]).bool()], dim=1)
    padded_proc[0, 2] = 55.0  # and in the existing pad slot of row 0
    a = prime_advantages(PRIME_OUT, PRIME_PROC, PRIME_MASK, 2, gamma=0.5)
    b = prime_advantages(PRIME_OUT, padded_proc, padded_mask, 2, gamma=0.5)
    close(b[:, :3], a)
    close(b[:, 3], [0, 0])


# ---------------------------------------------------------------- PURE (§7)

def test_min_form_weights_and_returns_hand_values():
    # r = [.5, -.5], T = 1: w ∝ [e^-.5, e^.5] -> w0 = 1/(1+e) = .268941, w1 = e/(1+e) = .731059
    # r~ = [.5*.268941, -.5*.731059] = [.134471, -.365529]; returns G0 = .134471 - .365529 = -.231059, G1 = -.365529
    # row 2 has one real step (r = .8) and garbage padding: w = [1, 0], G = [.8, 0]
    r = T_([[.5, -.5], [.8, 1e9]])
    m = T_([[1, 1], [1, 0]]).bool()
    close(min_form_weights(r, m, 1.0), [[.268941, .731059], [1, 0]])
    close(min_form_rewards(r, m, 1.0), [[.134471, -.365529], [.8, 0]])
    close(min_form_returns(r, m, 1.0), [[-.231059, -.365529], [.8, 0]])


def test_min_form_weights_empty_row_is_zero():
    w = min_form_weights(T_([[0.3, 0.1]]), T_([[0, 0]]).bool(), 0.1)
    close(w, [[0, 0]])


def test_strict_min_hand_values():
    # running min from the end over real steps: [.9, -.2, .5 | pad] -> [-.2, -.2, .5, 0]; the pad 0 is not read
    close(strict_min_returns(T_([[.9, -.2, .5, -5.]]), T_([[1, 1, 1, 0]]).bool()), [[-.2, -.2, .5, 0]])
    # all-positive steps: a zero-filled grid would wrongly give 0; we give [.4, .6]
    close(strict_min_returns(T_([[.4, .6, 0.]]), T_([[1, 1, 0]]).bool()), [[.4, .6, 0]])


def test_min_form_tends_to_strict_min_as_temperature_goes_to_zero():
    r = T_([[.9, .3, -.4, .6, .2], [.5, .7, .1, 0., 0.]], dtype=torch.float64)
    m = T_([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]).bool()
    approx = min_form_returns(r, m, 1e-3)
    strict = strict_min_returns(r, m)
    # worst steps: row 0 -> index 2 (-.4), row 1 -> index 2 (.1); steps up to it get min_j r_j
    close(approx[0, :3], [-.4, -.4, -.4], atol=1e-8)
    close(approx[1, :3], [.1, .1, .1], atol=1e-8)
    close(approx[:, :3], strict[:, :3], atol=1e-8)
    # after the worst step the softmax weights vanish (e^-(r-min)/T), so credit -> 0, not the running min
    close(approx[0, 3:], [0, 0], atol=1e-8)


def test_min_form_with_huge_temperature_is_sum_form_over_num_steps():
    # T -> inf: w_k = 1/S_i, so S_i * min_form_returns == sum-form (gamma 1) returns of the raw rewards
    r = T_([[.9, .3, -.4, .6], [.5, .7, .1, 123.]], dtype=torch.float64)
    m = T_([[1, 1, 1, 1], [1, 1, 1, 0]]).bool()
    approx = min_form_returns(r, m, 1e9)
    num_steps = m.sum(-1, keepdim=True).to(r.dtype)  # (B,1) = [[4],[3]]
    sum_form = token_returns(r, m, 1.0)  # row 0: [1.4, .5, .2, .6]; row 1: [1.3, .8, .1, 0]
    close(sum_form, [[1.4, .5, .2, .6], [1.3, .8, .1, 0]], atol=1e-12)
    close(approx * num_steps, sum_form, atol=1e-8)
    # equivalently: first-step credit = mean step reward (1.4/4 = .35, 1.3/3 = .433333)
    close(approx[:, 0], [.35, .433333], atol=1e-6)


def test_step_to_token_rewards_and_token_credit():
    # steps end at tokens 1 and 4 (T = 6): rewards [.2, -.5] -> token rewards [0,.2,0,0,-.5,0]
    # token returns (gamma 1): [-.3, -.3, -.5, -.5, -.5, 0] with the 6th token padded
    tok = step_to_token_rewards(T_([[.2, -.5, 9.]]), T_([[1, 4, 0]]), T_([[1, 1, 0]]).bool(), 6)
    close(tok, [[0, .2, 0, 0, -.5, 0]])
    close(token_returns(tok, T_([[1, 1, 1, 1, 1, 0]]).bool(), 1.0), [[-.3, -.3, -.5, -.5, -.5, 0]])


def test_pure_token_baseline_hand_values():
    # G = 2. s0: steps [.2, .4], tokens per step [3, 2], |y| = 6, R_0 = .6
    #        s1: step  [-.3],   tokens [4],        |y| = 5, R_1 = -.3
    # b_0 = R_1/|y_1| = -.3/5 = -.06 -> [.2 + .06*3, .4 + .06*2] = [.38, .52]
    # b_1 = R_0/|y_0| = .6/6 = .1    -> [-.3 - .1*4] = [-.7]
    out = pure_token_baseline(T_([[.2, .4], [-.3, 99.]]), T_([[1, 1], [1, 0]]).bool(),
                              T_([[3, 2], [4, 0]]), T_([6, 5]), 2)
    close(out, [[.38, .52], [-.7, 0]])


# ---------------------------------------------------------------- losses

def test_masked_mean_ignores_padding_even_nan():
    # (1 + 2)/2 = 1.5; per row: [1.5, 4]
    x = T_([[1., 2., float("nan")], [4., float("inf"), 0.]])
    m = T_([[1, 1, 0], [1, 0, 0]]).bool()
    close(masked_mean(x, m), (1 + 2 + 4) / 3)
    close(masked_mean(x, m, dim=-1), [1.5, 4])


def test_ppo_clip_loss_hand_values():
    # ratios rho = [1.5, 1.5, .5, .5], A = [+1, -1, +1, -1], eps = .2
    # tok0: min(1.5, 1.2) = 1.2 (clipped)       tok1: min(-1.5, -1.2) = -1.5
    # tok2: min(.5, .8) = .5                     tok3: min(-.5, -.8) = -.8 (clipped)
    # loss = -(1.2 - 1.5 + .5 - .8)/4 = .6/4 = .15; clip_frac = 2/4
    # approx_kl (k3) = mean((rho-1) - log rho): rho 1.5 -> .5 - .405465 = .094535; rho .5 -> -.5 + .693147 = .193147
    #   mean = (2*.094535 + 2*.193147)/4 = .143841; k1 = mean(-log rho) = (-.405465*2 + .693147*2)/4 = .143841
    old = torch.zeros(1, 5)
    logp = T_([[math.log(1.5), math.log(1.5), math.log(.5), math.log(.5), 7.0]])
    adv = T_([[1., -1, 1, -1, float("nan")]])
    mask = T_([[1, 1, 1, 1, 0]]).bool()
    loss, stats = ppo_clip_loss(logp, old, adv, mask, clip_eps=0.2)
    close(loss, .15)
    close(stats["clip_frac"], .5)
    close(stats["approx_kl"], .143841)
    close(stats["approx_kl_k1"], .143841)
    # clip-higher .28: tok0 -> min(1.5, 1.28) = 1.28; loss = -(1.28 - 1.5 + .5 - .8)/4 = .52/4 = .13
    loss_high, _ = ppo_clip_loss(logp, old, adv, mask, clip_eps=0.2, clip_eps_high=0.28)
    close(loss_high, .13)


def test_ppo_loss_at_ratio_one_is_minus_mean_advantage_and_grad_is_finite():
    # rho = 1: loss = -mean(A) over real tokens = -(2 - 1 + 3)/3 = -4/3, nothing clipped
    logp = torch.zeros(2, 3, requires_grad=True)
    adv = T_([[2., -1., float("nan")], [3., 5., 5.]])
    mask = T_([[1, 1, 0], [1, 0, 0]]).bool()
    loss, stats = ppo_clip_loss(logp, logp.detach(), adv, mask)
    close(loss, -4 / 3)
    close(stats["clip_frac"], 0.0)
    close(stats["approx_kl"], 0.0)
    loss.backward()
    # d loss / d logp_t = -A_t/3 at real tokens, 0 at padding
    close(logp.grad, [[-2 / 3, 1 / 3, 0], [-1, 0, 0]])
    # sequence-mean aggregation: row means [.5, 3] -> -(.5 + 3)/2 = -1.75
    loss_seq, _ = ppo_clip_loss(logp.detach(), logp.detach(), adv, mask, aggregate="seq_mean_token_mean")
    close(loss_seq, -1.75)


def test_kl_estimators_hand_values():
    # pi = .5, ref = .25: k1 = log .5 - log .25 = log 2 = .693147
    # k2 = .5 * .693147^2 = .240227; k3: log r = log(.25/.5) = -.693147, r = .5 -> .5 + .693147 - 1 = .193147
    logp, ref = T_([math.log(.5)]), T_([math.log(.25)])
    close(kl_k1(logp, ref), [.693147])
    close(kl_k2(logp, ref), [.240227])
    close(kl_k3(logp, ref), [.193147])
    close(kl_k3(ref, ref), [0.0])


# ---------------------------------------------------------------- shaping

def test_pav_effective_reward():
    # [.5 + 2*.1, .6 + 2*(-.2)] = [.7, .2]; padded step -> 0
    close(pav_effective_reward(T_([[.5, .6, 3.]]), T_([[.1, -.2, 3.]]), 2.0, T_([[1, 1, 0]]).bool()), [[.7, .2, 0]])


def test_prof_kept_counts():
    assert prof_kept_counts(4, 2, 4) == (2, 2)  # balanced 2/2
    assert prof_kept_counts(7, 1, 4) == (3, 1)  # only one wrong exists
    assert prof_kept_counts(3, 3, 5) == (3, 2)  # odd: extra slot to the correct side on a tie
    assert prof_kept_counts(1, 4, 3) == (1, 2)  # odd: extra slot to the larger (wrong) side
    assert prof_kept_counts(2, 1, 8) == (2, 1)  # group smaller than keep: keep all


def test_prof_filter_both():
    # group 0 (ids 5): outcomes [1,1,1,1,0,0], mean process [.9,.2,.7,.5,.8,.1], keep 4 -> 2 correct + 2 wrong
    #   correct ranked by score (= mean process): .9 (row0), .7 (row2) kept; .5, .2 dropped
    #   wrong: both kept (only 2)
    # group 1 (ids 2): outcomes [0,0,0,1], process [.6,.1,.3,.4], keep 2 -> 1 correct + 1 wrong
    #   wrong scores = -process = [-.6,-.1,-.3] -> keep the highest = row with .1
    outcomes = T_([1., 1, 1, 1, 0, 0, 0, 0, 0, 1])
    process = T_([.9, .2, .7, .5, .8, .1, .6, .1, .3, .4])
    ids = T_([5, 5, 5, 5, 5, 5, 2, 2, 2, 2])
    keep = prof_filter(outcomes, process, ids, 4)
    assert keep[:6].tolist() == [True, False, True, False, True, True]
    keep2 = prof_filter(outcomes, process, ids, 2)
    assert keep2[6:].tolist() == [False, True, False, True]
    # {-1,+1} outcomes read the same
    assert prof_filter(outcomes * 2 - 1, process, ids, 4).tolist() == keep.tolist()


def test_prof_step_penalty_and_filter_correct():
    # scores: (mean - .5*1[H==1 or H>=10]) * sign
    # row0 correct H=1: (.9-.5) = .4; row1 correct H=3: .6; row2 wrong H=12: -(.2-.5) = .3; row3 wrong H=4: -.1
    s = prof_consistency_scores(T_([1., 1, 0, 0]), T_([.9, .6, .2, .1]), T_([1, 3, 12, 4]), .5, 10)
    close(s, [.4, .6, .3, -.1])
    # Filter-Correct over a group of 6 (4 correct, 2 wrong), keep 4: correct ranked, wrong thinned at random
    outcomes = T_([1., 1, 1, 1, 0, 0])
    keep = prof_filter(outcomes, T_([.1, .9, .8, .2, .5, .5]), 6, 4, mode="correct",
                       generator=torch.Generator().manual_seed(0))
    assert keep.tolist() == [False, True, True, False, True, True]
    # 2 correct + 4 wrong, keep 4 -> 2 + 2: correct both kept, 2 of the 4 wrong drawn at random (seeded)
    outcomes = T_([1., 1, 0, 0, 0, 0])
    a = prof_filter(outcomes, T_([.1, .9, .8, .2, .5, .4]), 6, 4, mode="correct",
                    generator=torch.Generator().manual_seed(1))
    b = prof_filter(outcomes, T_([.1, .9, .8, .2, .5, .4]), 6, 4, mode="correct",
                    generator=torch.Generator().manual_seed(1))
    assert a[:2].tolist() == [True, True] and int(a[2:].sum()) == 2 and a.tolist() == b.tolist()


def test_posterior_gate_and_renorm():
    # gate: [.8*1, .9*0] ; per-step (B,S): the wrong row is zeroed
    close(posterior_gate(T_([.8, .9]), T_([1., 0.])), [.8, 0])
    close(posterior_gate(T_([[.8, .4], [.9, .3]]), T_([0., 1.])), [[0, 0], [.9, .3]])
    # renorm: correct [.7,.2] + 1 - 1 = [.7,.2]; wrong [.7,.2] + 0 - 1 = [-.3,-.8]; padded -> 0
    close(renorm(T_([[.7, .2], [.7, .2]]), T_([1., 0.]), T_([[1, 1], [1, 0]]).bool()), [[.7, .2], [-.3, 0]])


def test_clip_and_delta_mechanisms():
    # clip eta .5: min(.7-.5, 0) = 0, min(.2-.5, 0) = -.3, min(.9-.5, 0) = 0; pad -> 0
    r = T_([[.7, .2, .9, 4.]])
    m = T_([[1, 1, 1, 0]]).bool()
    close(clip_process_rewards(r, .5, m), [[0, -.3, 0, 0]])
    # delta: [.7-.2, .2-.9, .9 (last real)] = [.5, -.7, .9]; the pad value 4 is never read
    d = delta_process_rewards(r, m)
    close(d, [[.5, -.7, .9, 0]])
    # telescoping: undiscounted return of the delta rewards is the original step reward
    close(token_returns(d, m, 1.0), [[.7, .2, .9, 0]])


def test_par_reward():
    # sigmoid(1-0) + sigmoid(1-2) = sigmoid(1) + sigmoid(-1) = 1 -> mean .5; r = ln 3 vs 0: 3/(1+3) = .75
    close(par_reward(T_([1.0]), T_([[0.0, 2.0]])), [.5])
    close(par_reward(T_([math.log(3.0), 0.0]), T_([0.0, 0.0])), [.75, .5])


def test_capo_vote_and_rewards():
    flags = T_([[[1, 1, 0]], [[1, 0, 0]], [[1, 1, 1]]]).bool()  # (C=3, B=1, S=3)
    close(capo_vote(flags, "intersection"), [[1, 0, 0]])  # only step 0 flagged by all 3
    close(capo_vote(flags, "majority"), [[1, 1, 0]])  # shares 3/3, 2/3, 1/3; flagged when > 1/2
    close(capo_vote(flags, "average"), [[1, 2 / 3, 1 / 3]])
    # outcome 1, weights 2 / .5: [2 - .5, 2 - .5*(2/3), pad 0] = [1.5, 1.666667, 0]
    close(capo_step_rewards(T_([1.]), T_([[1., 2 / 3, 1.]]), T_([[1, 1, 0]]).bool(), 2.0, .5), [[1.5, 1.666667, 0]])


def test_trust_weight():
    # group 0: correct process [.8,.6] mu_c = .7; wrong [.3,.5] mu_w = .4 -> mu_c >= mu_w -> 1
    # group 1: correct [.2], wrong [.7] -> exp(.2 - .7) = exp(-.5) = .606531
    # group 2: all correct -> nothing to compare -> 1
    w = trust_weight(T_([.8, .6, .3, .5, .2, .7, .1, .9]), T_([1., 1, 0, 0, 1, 0, 1, 1]),
                     T_([0, 0, 0, 0, 1, 1, 2, 2]))
    close(w, [1, 1, 1, 1, .606531, .606531, 1, 1])


def test_anneal():
    assert anneal(1.0, 25, 100, "linear") == pytest.approx(.75)  # 1 - 25/100
    assert anneal(1.0, 150, 100, "linear") == 0.0  # past the end
    assert anneal(1.0, 50, 100, "cosine") == pytest.approx(.5)  # .5(1 + cos(pi/2))
    assert anneal(2.0, 25, 100, "cosine") == pytest.approx(1.707107)  # 2*.5*(1 + cos(pi/4)) = 1 + .707107
    assert anneal(1.0, 100, 100, "exp") == pytest.approx(math.exp(-1))  # .367879
    assert anneal(.3, 10**6, 100, "constant") == .3
    with pytest.raises(InputError):
        anneal(1.0, 0, 100, "step")


def test_inject_reward_noise_seeded():
    rewards = T_([0., 1., 1., 0., 1., 0.])
    # flip_prob 0 / 1: unchanged / all flipped (r -> 0 + 1 - r)
    close(inject_reward_noise(rewards, flip_prob=0.0), rewards)
    close(inject_reward_noise(rewards, flip_prob=1.0), 1 - rewards)
    # seeded: the flips are exactly the draws < .3 of torch.rand(6, generator seed 123, float64)
    draw = torch.rand(6, generator=torch.Generator().manual_seed(123), dtype=torch.float64)
    expected = torch.where(draw < .3, 1 - rewards, rewards)
    got = inject_reward_noise(rewards, flip_prob=.3, generator=torch.Generator().manual_seed(123))
    close(got, expected)
    # {-1,+1} rewards flip by sign; masked positions untouched
    pm = T_([-1., 1.])
    close(inject_reward_noise(pm, flip_prob=1.0, values=(-1.0, 1.0), mask=T_([True, False])), [1., 1.])
    # gaussian: r + std * randn(seeded)
    noise = torch.randn(6, generator=torch.Generator().manual_seed(7))
    close(inject_reward_noise(rewards, std=.1, generator=torch.Generator().manual_seed(7)), rewards + .1 * noise)
    with pytest.raises(InputError):
        inject_reward_noise(rewards, flip_prob=.1, std=.1)
    with pytest.raises(InputError):
        inject_reward_noise(T_([.5]), flip_prob=.1)
