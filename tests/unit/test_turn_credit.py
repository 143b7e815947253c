"""Turn-credit methods on tiny batches worked by hand, their reductions to outcome baselines, and the
bias of per-turn-index normalisation measured against exact enumeration of a small agent MDP."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from prmkit.agents.credit import (TurnBatch, compute_turn_advantages, istar_prm_loss, oni_intrinsic,
                                  sil_advantages, spa_loss, spear_rewards)
from prmkit.errors import InputError

T = torch.tensor


def close(t, expected, atol=1e-5):
    want = torch.tensor(expected, dtype=torch.float32)
    assert torch.allclose(t.float(), want, atol=atol), (t, want)


def batch(outcomes, lengths, groups=None, **extra):
    n = max(lengths)
    mask = torch.tensor([[t < L for t in range(n)] for L in lengths])
    return TurnBatch(outcomes=T(outcomes, dtype=torch.float32),
                     groups=T(groups if groups is not None else [0] * len(lengths)), turn_mask=mask, **extra)


def test_outcome_grpo_broadcasts_the_episode_advantage():
    b = batch([1, 0, 0, 0], [2, 1, 3, 2])
    a = compute_turn_advantages("grpo", b)
    assert a[0, :2].tolist() == pytest.approx([1.5, 1.5], abs=1e-5) and a[0, 2] == 0
    assert a[2].tolist() == pytest.approx([-0.5] * 3, abs=1e-5) and a[1, 1:].abs().sum() == 0


def test_igpo_by_hand():
    # ep0: two turns, p = 0.1 -> 0.5 -> (last turn: the outcome 1); ep1: one turn, outcome 0
    b = batch([1, 0], [2, 1], answer_probs=T([[0.1, 0.5, 0.9], [0.2, 0.3, 0.0]]))
    a = compute_turn_advantages("igpo", b)
    rewards = [0.4, 1.0, 0.0]  # ep0 turn 0 (gain), ep0 turn 1 (outcome), ep1 turn 0 (outcome)
    mean = sum(rewards) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / 2)
    z = [(r - mean) / (std + 1e-6) for r in rewards]
    assert a[0].tolist() == pytest.approx([z[0] + z[1], z[1]], abs=1e-5)
    assert a[1].tolist() == pytest.approx([z[2], 0.0], abs=1e-5)
    # discounting: gamma 0.5
    a = compute_turn_advantages("igpo", b, gamma=0.5)
    assert a[0, 0].item() == pytest.approx(z[0] + 0.5 * z[1], abs=1e-5)


def _random_batch(seed: int, b: int = 8, n: int = 5, k: int = 4):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, n + 1, (b,), generator=g).tolist()
    out = batch(torch.randint(0, 2, (b,), generator=g).tolist(), lengths, groups=[i // k for i in range(b)],
                answer_probs=torch.rand(b, max(lengths) + 1, generator=g),
                step_rewards=torch.rand(b, max(lengths), generator=g),
                states=torch.randint(0, 3, (b, max(lengths)), generator=g),
                valid=torch.rand(b, max(lengths), generator=g) > 0.5)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_methods_reduce_to_outcome_baselines(seed):
    b = _random_batch(seed)
    grpo, rloo = compute_turn_advantages("grpo", b), compute_turn_advantages("rloo", b)
    assert torch.allclose(compute_turn_advantages("igpo", b, ig_coef=0.0), grpo, atol=1e-5)
    assert torch.allclose(compute_turn_advantages("istar", b, weight=0.0), rloo, atol=1e-6)
    assert torch.allclose(compute_turn_advantages("istar", b, weight=0.0, baseline="grpo"), grpo, atol=1e-6)
    assert torch.allclose(compute_turn_advantages("gigpo", b, weight=0.0), grpo, atol=1e-6)
    last = torch.zeros_like(b.step_rewards)
    last[torch.arange(8), b.turn_mask.sum(-1) - 1] = b.outcomes
    spa_b = TurnBatch(b.outcomes, b.groups, b.turn_mask, progress=last, valid=b.valid)
    assert torch.allclose(compute_turn_advantages("spa", spa_b, grounding=0.0), rloo, atol=1e-6)
    assert torch.allclose(compute_turn_advantages("spear", TurnBatch(b.outcomes, b.groups, b.turn_mask,
                          tool_calls=torch.zeros(8)), coef=0.0), grpo, atol=1e-6)


def test_istar_by_hand_and_its_prm_loss():
    b = batch([1, 0], [2, 1], step_rewards=T([[1.0, 3.0], [2.0, 0.0]]))
    a = compute_turn_advantages("istar", b)
    # episode RLOO: +1 / -1; step RLOO over the group's three turns {1, 3, 2}: 1 - 2.5, 3 - 1.5, 2 - 2
    close(a, [[1 - 1.5, 1 + 1.5], [-1 + 0.0, 0.0]])
    loss, pairs = istar_prm_loss(T([[1.0, 3.0], [2.0, 0.0]]), b.turn_mask, b.outcomes, b.groups)
    q_s, q_f = 2.0, 2.0  # means of each episode's turn rewards
    assert pairs == 1 and loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-(q_s - q_f)))))
    _, none = istar_prm_loss(T([[1.0], [2.0]]), batch([1, 1], [1, 1]).turn_mask, T([1.0, 1.0]), T([0, 0]))
    assert none == 0


def test_spa_by_hand():
    b = batch([1, 0], [2, 2], progress=T([[0.25, 0.5], [0.1, -0.1]]), valid=T([[True, False], [True, True]]))
    a = compute_turn_advantages("spa", b, grounding=0.5)
    g0 = [0.25 + 0.5 + 0.5, 0.1 + 0.5 - 0.1 + 0.5]  # whole-episode returns
    g1 = [0.5, -0.1 + 0.5]
    close(a, [[g0[0] - g0[1], g1[0] - g0[1]], [g0[1] - g0[0], g1[1] - g0[0]]])
    assert spa_loss(b.progress, b.turn_mask, b.outcomes).item() == pytest.approx(((0.75 - 1) ** 2 + 0.0) / 2)


def test_gigpo_anchor_states_by_hand():
    b = batch([1, 0], [2, 2], states=T([[0, 1], [0, 2]]))
    a = compute_turn_advantages("gigpo", b, gamma=0.5)
    e = 1 / (math.sqrt(0.5) + 1e-6) * 0.5  # GRPO of [1, 0]: +-0.5 / std(unbiased)=0.7071
    s = 0.25 / (math.sqrt(0.125) + 1e-6)  # state 0's returns {0.5, 0}: +-0.25 / 0.3536
    close(a, [[e + s, e], [-e - s, -e]])


def test_attributed_by_hand():
    b = batch([1, 0], [2, 1], judge=T([[0.5, 1.0], [1.0, 0.0]]))
    a = compute_turn_advantages("attributed", b, mode="sotopia")
    close(a, [[1.5 - 0.0, 1.0 - 0.0], [0.0 - 1.5, 0.0]])
    a = compute_turn_advantages("attributed", b, mode="epo", gamma=0.5)
    # ep0 rewards [0.5, 1 + 1] -> returns [1.5, 2] / 2; ep1 rewards [1 + 0] -> [1] / 1
    close(a, [[0.75 - 1.0, 1.0 - 1.0], [1.0 - 0.75, 0.0]])


def test_spear_sil_oni_by_hand():
    r = spear_rewards(T([1.0, 0.0, 0.0]), T([3, 2, 10]), coef=0.05, cap=0.2)
    assert r.tolist() == pytest.approx([1.0, 0.1, 0.2])
    r = spear_rewards(T([1.0, 0.0, 0.0]), T([3, 2, 10]), coef=0.05, cap=0.2, step=5, decay_steps=10)
    assert r.tolist() == pytest.approx([1.0, 0.05, 0.2])
    assert sil_advantages(T([1.0, 0.0]), T([0.2, 0.4, 0.6]), T([0.5, 0.5, 1.0])).tolist() == pytest.approx(
        [(1 - 0.4) / (0.5 + 1e-6), 0.0])
    mask = T([[True, True, True, False]])
    close(oni_intrinsic(T([[7, 7, 8, 7]]), mask, coef=0.4, beta=3.0), [[0.4, 0.4 / 8, 0.4, 0.0]])


def test_pure_and_hybrid_by_hand():
    b = batch([1, 0], [2, 1], step_rewards=T([[1.0, 0.0], [0.75, 0.0]]))
    a = compute_turn_advantages("pure", b, temperature=0.1)
    r = [1.0, -1.0]  # 2p - 1 for ep0
    w = [math.exp(-x / 0.1) for x in r]
    w = [x / sum(w) for x in w]
    g_ep0 = [w[0] * r[0] + w[1] * r[1] + 1.0, w[1] * r[1] + 1.0]
    g_ep1 = [1.0 * 0.5 + 0.0]  # one turn: weight 1, r = 0.5
    close(a, [[g_ep0[0] - g_ep1[0], g_ep0[1] - g_ep1[0]], [g_ep1[0] - g_ep0[0], 0]])
    h = compute_turn_advantages("hybrid", b)
    close(h, [[1.0 - (-0.25), 0.0 - (-0.25)], [-0.25 - 1.0, 0.0]])


def test_missing_input_and_unknown_method_are_named():
    with pytest.raises(InputError, match="answer_probs"):
        compute_turn_advantages("igpo", batch([1, 0], [1, 1]))
    with pytest.raises(InputError, match="unknown turn method"):
        compute_turn_advantages("nope", batch([1, 0], [1, 1]))


# ------------------------------------------------------------------------------------------------
# exact enumeration: an agent that may stop at turn 1 (reward 0.3) or go on to turn 2 (1 right, 0 wrong)
# ------------------------------------------------------------------------------------------------
PATHS = [((0,), 0.3), ((1, 0), 1.0), ((1, 1), 0.0)]  # (turn-1 action, turn-2 action), reward


def _expected_estimator(method: str, theta1, theta2, k: int = 3) -> torch.Tensor:
    p1, p2 = torch.softmax(theta1, 0), torch.softmax(theta2, 0)
    probs = [p1[0], p1[1] * p2[0], p1[1] * p2[1]]
    total = torch.zeros(4)
    for combo in itertools.product(range(3), repeat=k):
        b = batch([PATHS[c][1] for c in combo], [len(PATHS[c][0]) for c in combo])
        adv = compute_turn_advantages(method, b)
        g = torch.zeros(4)
        for i, c in enumerate(combo):
            for t, a in enumerate(PATHS[c][0]):
                score = (torch.nn.functional.one_hot(torch.tensor(a), 2) - (p1 if t == 0 else p2))
                g[2 * t: 2 * t + 2] += adv[i, t] * score
        weight = math.prod(float(probs[c]) for c in combo)
        total += weight * g / k
    return total


def test_loo_turn_baseline_is_unbiased_and_per_index_normalisation_is_not():
    theta1, theta2 = torch.tensor([0.3, -0.2]), torch.tensor([0.5, 0.1])
    t1, t2 = theta1.clone().requires_grad_(True), theta2.clone().requires_grad_(True)
    p1, p2 = torch.softmax(t1, 0), torch.softmax(t2, 0)
    objective = p1[0] * 0.3 + p1[1] * p2[0] * 1.0
    objective.backward()
    true_grad = torch.cat([t1.grad, t2.grad])
    loo = _expected_estimator("loo_turn", theta1, theta2)
    assert torch.allclose(loo, true_grad, atol=1e-6)
    biased = _expected_estimator("per_turn_index", theta1, theta2)
    assert float((biased - true_grad).abs().max()) > 1e-2
    cos = torch.nn.functional.cosine_similarity(biased, true_grad, dim=0)
    assert cos < 0.999  # not even a rescaling of the true gradient
