"""prmkit.rl loop pieces (rollout layout, per-method advantages, PRIME filter, monitors, compare
summaries) against values computed by hand (arithmetic in the comments) or a brute-force reference."""

from __future__ import annotations

import math

import pytest
import torch

from prmkit.errors import InputError
from prmkit.rl.compare import steps_to_reach, summarize_runs
from prmkit.rl.config import RLConfig
from prmkit.rl.methods import compute_advantages, pure_step_rewards
from prmkit.rl.monitors import DriftMonitor, step_stats
from prmkit.rl.prime import accuracy_filter
from prmkit.rl.rollout import build_batch

T_ = torch.tensor


def close(a, b, atol=1e-4):
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    assert a.shape == b.shape and torch.allclose(a, b, atol=atol), f"{a} != {b}"


def two_row_batch(outcomes, scores):
    """One prompt (group 0), two responses: row 0 has 5 tokens with step ends [1, 3] (token 4 = EOS,
    outside any step); row 1 has 4 tokens with step ends [0, 2] (token 3 outside)."""
    b = build_batch([[1, 5, 6], [1, 5, 6]], [[7, 8, 9, 10, 2], [7, 8, 9, 2]], [[1, 3], [0, 2]], outcomes, [0, 0],
                    pad_id=0)
    b.step_scores = T_(scores, dtype=torch.float32)
    b.loss_rows = torch.ones(2, dtype=torch.bool)
    return b


# ---------------------------------------------------------------- rollout layout

def test_build_batch_layout_and_shapes():
    b = build_batch([[1, 5], [1, 5, 6]], [[7, 2], [7, 8, 9]], [[0], [0, 1]], [1.0, 0.0], [0, 0], pad_id=0)
    # P = 3 (left-padded prompts), T = 3 (right-padded responses)
    assert b.prompt_len == 3 and b.input_ids.tolist() == [[0, 1, 5, 7, 2, 0], [1, 5, 6, 7, 8, 9]]
    assert b.attention_mask.tolist() == [[0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]
    assert b.response_mask.tolist() == [[True, True, False], [True, True, True]]
    # S = 2: row 0 has one step (token 0), token 1 (EOS) and padding map to S = 2
    assert b.step_mask.tolist() == [[True, False], [True, True]]
    assert b.step_of_token.tolist() == [[0, 2, 2], [0, 1, 2]]
    with pytest.raises(InputError, match="old_logprobs"):
        b.old_logprobs = torch.zeros(2, 4)
        b.validate()
    with pytest.raises(InputError, match=r"step_ends\[0\]\[0\]"):
        build_batch([[1]], [[7, 2]], [[5]], [1.0], [0], pad_id=0)


def test_response_logprobs_read_the_response_columns():
    from prmkit.lm import token_logprobs
    from prmkit.rl.rollout import response_logprobs

    torch.manual_seed(0)
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=12, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, pad_token_id=0))
    b = build_batch([[1, 5], [1, 5, 6]], [[7, 2], [7, 8, 9]], [[0], [0, 1]], [1.0, 0.0], [0, 0], pad_id=0)
    with torch.no_grad():
        lp = response_logprobs(model, b)
        # row 1 alone, unpadded: its response tokens are positions 3, 4, 5 -> logprob columns 2, 3, 4
        ref = token_logprobs(model, T_([[1, 5, 6, 7, 8, 9]]), torch.ones(1, 6, dtype=torch.long))[0, 2:]
        # row 0 alone: prompt [1, 5], response [7, 2] -> columns 1, 2
        ref0 = token_logprobs(model, T_([[1, 5, 7, 2]]), torch.ones(1, 4, dtype=torch.long))[0, 1:]
    close(lp[1], ref, atol=1e-5)
    close(lp[0, :2], ref0, atol=1e-5)
    assert lp[0, 2] == 0.0


# ---------------------------------------------------------------- PRIME accuracy filter

def test_accuracy_filter_inclusive_bounds():
    # group accuracies: 0.25, 0.5, 1.0, 0.0
    outcomes = T_([1., 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    groups = torch.arange(16) // 4
    keep = accuracy_filter(outcomes, groups, 0.2, 0.8)
    assert keep.tolist() == [True] * 8 + [False] * 8
    # K=4, bounds [0.25, 0.75] inclusive keep 0.25 (PRIME's code keeps {0.25, 0.5, 0.75})
    assert accuracy_filter(outcomes, groups, 0.25, 0.75).tolist() == [True] * 8 + [False] * 8
    assert accuracy_filter(outcomes, groups, 0.3, 0.8).tolist() == [False] * 4 + [True] * 4 + [False] * 8


# ---------------------------------------------------------------- PURE transform in the loop

def test_pure_step_rewards_hand_values():
    # scores [1, .5, 0] -> r = 2p - 1 = [1, 0, -1]
    scores, mask = T_([[1.0, 0.5, 0.0]]), T_([[True, True, True]])
    close(pure_step_rewards(scores, mask, "sum", 0.1), [[1., 0., -1.]])
    close(pure_step_rewards(scores, mask, "mean", 0.1), [[1 / 3, 0., -1 / 3]])
    # T = 1: w = softmax([-1, 0, 1]) = [e^-1, 1, e] / 4.0862 = [.0900, .2447, .6652]; r~ = [.0900, 0, -.6652]
    close(pure_step_rewards(scores, mask, "min", 1.0), [[.0900, 0., -.6652]])
    with pytest.raises(InputError):
        pure_step_rewards(scores, mask, "max", 1.0)


def test_pure_sum_advantages_hand_values():
    # r = 2p - 1: row 0 [1, 0], row 1 [-1, 1]; outcomes [1, 0]; lengths 5, 4; step tokens n: row 0 [2, 2], row 1 [1, 2]
    # token baseline b_0 = R_1/|y_1| = 0/4 = 0; b_1 = R_0/|y_0| = 1/5 = .2
    #   row 0 -> [1, 0]; row 1 -> [-1 - .2*1, 1 - .2*2] = [-1.2, .6]
    # VR = solved - 1 = [0, -1], RLOO -> [1, -1], on the last token (row 0 token 4, row 1 token 3)
    # token rewards row 0: t1 = 1, t3 = 0, t4 = 1 -> returns [2, 2, 1, 1, 1]
    # row 1: t0 = -1.2, t2 = .6, t3 = -1 -> returns [-1.6, -.4, -.4, -1, 0 (padding)]
    b = two_row_batch([1.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    adv = compute_advantages("pure-sum", b, RLConfig())
    close(adv, [[2, 2, 1, 1, 1], [-1.6, -.4, -.4, -1, 0]])


def test_pure_strict_min_hand_values():
    # r row 0 [1, 0] -> running min from the end [0, 0]; row 1 [-1, 1] -> [-1, 1]
    # baseline = leave-one-out mean of G_0: row 0 gets G_0 of row 1 = -1, row 1 gets 0
    # process per token (EOS outside steps gets 0): row 0 [0+1, 0+1, 0+1, 0+1, 0]; row 1 [-1-0, 1-0, 1-0, 0]
    # VR returns (as above): row 0 [1, 1, 1, 1, 1], row 1 [-1, -1, -1, -1]
    b = two_row_batch([1.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    adv = compute_advantages("pure", b, RLConfig(pure_credit="strict"))
    close(adv, [[2, 2, 2, 2, 1], [-2, 0, 0, -1, 0]])


# ---------------------------------------------------------------- other methods

def test_pav_advantages_hand_values():
    # V before step 0 = leave-one-out mean of first-step scores: row 0 -> .6, row 1 -> .8
    # progress row 0 [.8 - .6, .4 - .8] = [.2, -.4]; row 1 [.6 - .8, .9 - .6] = [-.2, .3]
    # outcome RLOO [0 - 1, 1 - 0] = [-1, 1]; alpha .5: row 0 [-.9, -1.2], row 1 [.9, 1.15]
    # tokens: row 0 steps (0-1)(2-3), EOS -> outcome only; row 1 steps (0)(1-2), EOS
    b = two_row_batch([0.0, 1.0], [[0.8, 0.4], [0.6, 0.9]])
    adv = compute_advantages("pav", b, RLConfig(pav_alpha=0.5))
    close(adv, [[-.9, -.9, -1.2, -1.2, -1], [.9, 1.15, 1.15, 1, 0]])


def test_prof_keeps_consistent_balanced_rows_and_grpo_over_them():
    # group of 4: outcomes [1, 1, 1, 0], mean step scores [.9, .2, .7, .5], keep 2 -> 1 correct + 1 wrong;
    # the correct row with the highest score (row 0) and the wrong row (row 3) are kept;
    # GRPO over [1, 0]: mean .5, unbiased std .7071 -> +-.7071
    b = build_batch([[1]] * 4, [[7, 2]] * 4, [[0]] * 4, [1., 1., 1., 0.], [0] * 4, pad_id=0)
    b.step_scores = T_([[.9], [.2], [.7], [.5]])
    b.loss_rows = torch.ones(4, dtype=torch.bool)
    adv = compute_advantages("prof", b, RLConfig(prof_keep=2))
    assert b.loss_rows.tolist() == [True, False, False, True]
    close(adv[:, 0], [.7071, 0, 0, -.7071])


def test_pgrpo_gate_only_rewards_process_of_correct_answers():
    # R = outcome + 1[correct] * mean score = [1 + .5, 0] -> GRPO +-.7071 (the wrong row's .9 is ignored)
    b = build_batch([[1]] * 2, [[7, 2]] * 2, [[0]] * 2, [1., 0.], [0, 0], pad_id=0)
    b.step_scores = T_([[.5], [.9]])
    close(compute_advantages("pgrpo", b, RLConfig())[:, 0], [.7071, -.7071])


def test_par_hand_values():
    # raw = outcome + mean score = [1.5, .5, 0]; PAR_i = mean_j!=i sigmoid(raw_i - raw_j)
    #   = [(s(1)+s(1.5))/2, (s(-1)+s(.5))/2, (s(-1.5)+s(-.5))/2] = [.77432, .44570, .27998]; RLOO:
    #   .77432 - (.44570+.27998)/2 = .41147; .44570 - (.77432+.27998)/2 = -.08145; .27998 - .61001 = -.33003
    b = build_batch([[1]] * 3, [[7, 2]] * 3, [[0]] * 3, [1., 0., 0.], [0] * 3, pad_id=0)
    b.step_scores = T_([[.5], [.5], [0.]])
    close(compute_advantages("par", b, RLConfig())[:, 0], [.41147, -.08145, -.33003])


def brute_prime(outcomes, token_rewards, mask, K, pc=1.0, oc=1.0):
    """PRIME's advantage (PRIME, arXiv 2502.01456, Alg. 1) by explicit loops."""
    B, T = token_rewards.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for i in range(B):
        g = [j for j in range(B) if j // K == i // K and j != i]
        ro = outcomes[i] - sum(outcomes[j] for j in g) / len(g)
        avg = {j: sum(token_rewards[j, t] for t in range(T) if mask[j, t]) / int(mask[j].sum()) for j in g}
        bl = sum(avg.values()) / len(g)
        for t in range(T):
            if mask[i, t]:
                out[i, t] = oc * ro + pc * sum(token_rewards[i, s] - bl for s in range(t, T) if mask[i, s])
    return out


@pytest.mark.parametrize("method", ["renorm", "clip", "delta"])
def test_dense_shaping_methods_match_brute_force_prime_formula(method):
    from prmkit.rl import shaping

    b = two_row_batch([1.0, 0.0], [[0.8, 0.4], [0.6, 0.9]])
    shaped = {"renorm": shaping.renorm(b.step_scores, b.outcomes, b.step_mask),
              "clip": shaping.clip_process_rewards(b.step_scores, 0.5, b.step_mask),
              "delta": shaping.delta_process_rewards(b.step_scores, b.step_mask)}[method]
    # hand placement: row 0 steps end at tokens 1, 3; row 1 at tokens 0, 2
    tok = torch.zeros(2, 5)
    tok[0, 1], tok[0, 3], tok[1, 0], tok[1, 2] = shaped[0, 0], shaped[0, 1], shaped[1, 0], shaped[1, 1]
    adv = compute_advantages(method, b, RLConfig(clip_eta=0.5, process_coef=0.7))
    close(adv, brute_prime(b.outcomes, tok, b.response_mask, 2, pc=0.7))


def test_renorm_clip_delta_step_values():
    # renorm: p + o - 1 -> correct row [.8, .4], wrong row [-.4, -.1]
    # clip eta .5: min(p - .5, 0) -> [0, -.1], [0, 0]; delta: [.8 - .4, .4], [.6 - .9, .9]
    from prmkit.rl import shaping

    b = two_row_batch([1.0, 0.0], [[0.8, 0.4], [0.6, 0.9]])
    close(shaping.renorm(b.step_scores, b.outcomes, b.step_mask), [[.8, .4], [-.4, -.1]])
    close(shaping.clip_process_rewards(b.step_scores, .5, b.step_mask), [[0, -.1], [0, 0]])
    close(shaping.delta_process_rewards(b.step_scores, b.step_mask), [[.4, .4], [-.3, .9]])


def test_trust_and_anneal_in_the_loop():
    # trust: correct row mean .2 < wrong row mean .6 -> gamma = exp(.2 - .6) = .67032
    # R = [1 + .67032*.2, 0 + .67032*.6] = [1.13406, .40219] -> GRPO +-.7071 (two rows)
    # linear anneal at step = steps: coefficient 0 -> R = outcomes -> still +-.7071; check the raw R via K=3
    b = build_batch([[1]] * 3, [[7, 2]] * 3, [[0]] * 3, [1., 0., 0.], [0] * 3, pad_id=0)
    b.step_scores = T_([[.2], [.6], [.0]])
    # mu_c = .2, mu_w = (.6 + 0)/2 = .3 -> gamma = exp(-.1) = .904837
    # R = [1 + .904837*.2, .904837*.6, 0] = [1.180967, .542902, 0]; mean .574623;
    # deviations [.606344, -.031721, -.574623]; unbiased var = (.367653 + .001006 + .330192)/2 = .349426, std .591123
    adv = compute_advantages("trust", b, RLConfig())
    close(adv[:, 0], [1.025749, -.053662, -.972087])
    # annealed to 0 at the last step: R = outcomes [1, 0, 0] -> GRPO [1.1547, -.57735, -.57735]
    adv0 = compute_advantages("trust", b, RLConfig(process_anneal="linear", steps=10), step=10)
    close(adv0[:, 0], [1.1547, -.57735, -.57735])


def test_unknown_method_and_missing_scores():
    b = two_row_batch([1.0, 0.0], [[0.8, 0.4], [0.6, 0.9]])
    with pytest.raises(InputError, match="unknown reward method"):
        compute_advantages("ppo-magic", b, RLConfig())
    b.step_scores = None
    with pytest.raises(ValueError, match="step_scores"):
        compute_advantages("pav", b, RLConfig())


# ---------------------------------------------------------------- monitors

def test_step_stats_hand_values():
    # 5 steps in all; one empty, one repeat ("a" twice in solution 0)
    s = step_stats([["a", "b", "a"], ["", "c"]], [10, 4])
    assert s["mon/steps_per_solution"] == 2.5 and s["mon/length"] == 7.0
    assert s["mon/empty_step_frac"] == pytest.approx(0.2) and s["mon/repeated_step_frac"] == pytest.approx(0.2)
    assert s["mon/no_step_frac"] == 0.0


def test_drift_monitor_warns_on_drift_and_divergence():
    m = DriftMonitor(rel_tolerance=0.5, divergence_tolerance=0.05, window=1)
    first = {"mon/steps_per_solution": 4.0, "mon/length": 40.0, "process_reward": 0.5, "eval/accuracy": 0.4}
    assert m.update(first) == []
    later = {"mon/steps_per_solution": 7.0, "mon/length": 44.0, "process_reward": 0.7, "eval/accuracy": 0.3}
    w = m.update(later)
    # steps +75% > 50%; length +10% fine; process +.2 while accuracy -.1 -> divergence .3
    assert len(w) == 2 and "steps_per_solution" in w[0] and "held-out accuracy fell" in w[1]
    assert later["mon/drift_steps_per_solution"] == pytest.approx(0.75)
    assert later["mon/divergence"] == pytest.approx(0.3)
    assert m.update(dict(later)) == []  # each warning is raised once
    state = m.state_dict()
    m2 = DriftMonitor(window=1)
    m2.load_state_dict(state)
    assert m2.first == m.first and m2.warned == m.warned


def test_drift_monitor_compares_window_means():
    # window 2: baseline = mean of the first two readings (4, 6) = 5; latest two (6, 8) -> +40% < 50%, then
    # (8, 10) -> mean 9 = +80% -> warning
    m = DriftMonitor(rel_tolerance=0.5, window=2)
    got = [m.update({"mon/steps_per_solution": v}) for v in (4.0, 6.0, 8.0, 10.0)]
    assert got[:3] == [[], [], []] and len(got[3]) == 1
    state = m.state_dict()
    m2 = DriftMonitor(rel_tolerance=0.5, window=2)
    m2.load_state_dict(state)
    r1, r2 = {"mon/steps_per_solution": 4.0}, {"mon/steps_per_solution": 4.0}
    m.update(r1)
    m2.update(r2)
    assert r1 == r2 and r1["mon/drift_steps_per_solution"] == pytest.approx((7.0 - 5.0) / 5.0)


# ---------------------------------------------------------------- compare summaries

def test_steps_to_reach_and_summary():
    assert steps_to_reach([(0, .4), (5, .45), (10, .52), (15, .5)], .5) == 10
    assert steps_to_reach([(0, .4), (5, .45)], .5) is None

    def recs(accs):
        return [{"step": 5 * i, "sampled_tokens": 100 * i, "eval/accuracy": a} for i, a in enumerate(accs)]

    # baseline final = mean(.5, .6) = .55; "fast" mean curve: .4, .55 (step 5) -> reaches at 5
    s = summarize_runs({"grpo": [recs([.4, .45, .5]), recs([.4, .5, .6])],
                        "fast": [recs([.4, .5, .6]), recs([.4, .6, .6])]})
    assert s["baseline_final_accuracy"] == pytest.approx(.55)
    assert s["methods"]["grpo"]["steps_to_grpo_final"] == 10
    assert s["methods"]["fast"]["steps_to_grpo_final"] == 5
    assert s["methods"]["fast"]["tokens_to_grpo_final"] == 100
    assert s["methods"]["fast"]["final_accuracy"] == pytest.approx(.6)
    assert math.isclose(s["methods"]["grpo"]["final_accuracy_sd"], math.sqrt(.005))


def test_finished_runs_are_read_from_their_metrics(tmp_path):
    """rl-compare takes a run that reached its last step with the same settings from its files (no
    checkpoint needed); an unfinished run or one with other settings is not taken."""
    import dataclasses
    import json

    from prmkit.config import save_config
    from prmkit.rl.compare import finished_records
    from prmkit.rl.config import RLConfig

    cfg = RLConfig(out=str(tmp_path / "run"), reward="grpo", steps=2)
    (tmp_path / "run").mkdir()
    save_config(tmp_path / "run", cfg)
    records = [{"step": 0, "eval/accuracy": 0.4}, {"step": 1}, {"step": 2, "eval/accuracy": 0.5}]
    (tmp_path / "run" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert finished_records(cfg) == records
    assert finished_records(dataclasses.replace(cfg, device="cuda", threads=4)) == records  # resumable changes
    assert finished_records(dataclasses.replace(cfg, lr=1.0)) is None                        # other settings
    assert finished_records(dataclasses.replace(cfg, steps=3)) is None                       # not finished


def test_grpo_nostd_hand_values():
    # outcomes [1, 0] in one group: mean 0.5, so A = [0.5, -0.5] on every response token, no std division
    # (GRPO would give [0.7071, -0.7071]: std of [1, 0] is 0.7071); row 0 has 5 tokens, row 1 has 4
    b = two_row_batch([1.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    close(compute_advantages("grpo_nostd", b, RLConfig()), [[.5] * 5, [-.5] * 4 + [0]])


def test_reinforce_pp_baseline_hand_values():
    # outcomes [1, 0] in one group: centred [0.5]*5 and [-0.5]*4 over the 9 response tokens; token mean
    # 0.5/9 = 0.05556, deviations 0.44444 and -0.55556, unbiased var (5*0.19753 + 4*0.30864)/8 = 0.27778,
    # std 0.52705: A = 0.84327 and -1.05409 (GRPO's per-group std would give +-0.7071 instead)
    b = two_row_batch([1.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    close(compute_advantages("reinforce_pp_baseline", b, RLConfig()), [[.84327] * 5, [-1.05409] * 4 + [0]])
