"""SPEAR's self-imitation replay: the buffer's admission, window and recomputed advantages by hand, the
replayed rows of the PPO batch, and agent RL with it on (replays) and off (never touches it)."""

from __future__ import annotations

import pytest

from tests.smoke.test_agent_rl import tiny_agent  # noqa: F401  (fixture)
import torch

from prmkit.agents import signals
from prmkit.agents.replay import ReplayBuffer, ppo_batch
from prmkit.agents.rollout import EpisodeTokens

T = torch.tensor


def toks(turns: int, tag: int) -> EpisodeTokens:
    """A prompt of 2 tokens, then per turn 2 action tokens and 1 observation token."""
    t = EpisodeTokens()
    t.extend([tag, tag], False)
    t.prompt_len = 2
    for _ in range(turns):
        t.extend([5, 6], True, [-0.5, -0.25])
        t.turn_ends.append(len(t.ids) - 1)
        t.extend([7], False)
        t.context_ends.append(len(t.ids))
    return t


def test_buffer_by_hand():
    buf = ReplayBuffer(capacity=2, window=3)
    a, b, c, d = toks(1, 1), toks(2, 2), toks(1, 3), toks(1, 4)
    # batch 1: group 0 rewards {0.9, 0.1} (mean 0.5: 0.9 admitted), group 1 {0.3, 0.3} (none above its mean)
    assert buf.add([a, toks(1, 9), toks(1, 9), toks(1, 9)], T([0.9, 0.1, 0.3, 0.3]), T([0, 0, 1, 1])) == 1
    # batch 2: one group {0.6, 0.2}: 0.6 admitted
    assert buf.add([b, toks(1, 9)], T([0.6, 0.2]), T([0, 0])) == 1
    # batch 3: {0.3, 0.0} then {0.35, 0.35}: 0.3 admitted; capacity 2 drops the oldest (a)
    assert buf.add([c, toks(1, 9), d, toks(1, 9)], T([0.3, 0.0, 0.35, 0.35]), T([0, 0, 1, 1])) == 1
    assert [t for t, _ in buf.entries] == [b, c]
    means = [(0.9 + 0.1 + 0.3 + 0.3) / 4, 0.4, (0.3 + 0.0 + 0.35 + 0.35) / 4]  # 0.4, 0.4, 0.25
    var1 = sum((x - 0.4) ** 2 for x in (0.9, 0.1, 0.3, 0.3)) / 3
    var2 = ((0.6 - 0.4) ** 2 + (0.2 - 0.4) ** 2) / 1
    var3 = sum((x - 0.25) ** 2 for x in (0.3, 0.0, 0.35, 0.35)) / 3
    stds = sorted(v ** 0.5 for v in (var1, var2, var3))
    assert buf.means == pytest.approx(means) and sorted(buf.stds) == pytest.approx(stds)
    mean_med, std_med = 0.4, stds[1]  # medians of three values
    want = [(0.6 - mean_med) / (std_med + 1e-6), max(0.0, (0.3 - mean_med) / (std_med + 1e-6))]
    assert buf.advantages().tolist() == pytest.approx(want, abs=1e-6)
    assert want[1] == 0.0  # an entry that no longer beats the recent baseline is not replayed
    replayed, adv = buf.draw(5, seed=0)
    assert replayed == [b] and adv.tolist() == pytest.approx([want[0]], abs=1e-6)

    state = buf.state_dict()
    again = ReplayBuffer(2, 3)
    again.load_state_dict(state)
    assert again.advantages().tolist() == pytest.approx(want, abs=1e-6)


def test_replayed_rows_of_the_ppo_batch_carry_the_recomputed_advantage():
    buf = ReplayBuffer(capacity=4, window=2)
    old = toks(3, 2)
    buf.add([old, toks(1, 9)], T([1.0, 0.0]), T([0, 0]))  # mean 0.5, std sqrt(0.5): advantage 0.5 / 0.7071
    want = 0.5 / (0.5 ** 0.5 + 1e-6)
    now = [toks(1, 1), toks(2, 1)]
    adv = T([[0.25, 0.0], [-0.5, -0.5]])
    tb, token_adv, log = ppo_batch(buf, now, adv, T([0.0, 0.0]), T([0, 0]), 1, seed=0, pad_id=0)
    assert log == {"replay/episodes": 1, "replay/admitted": 0, "replay/buffer": 1}
    assert tb.ids.shape[0] == 3 and tb.turn_mask[2].tolist() == [True, True, True]
    row = token_adv[2][tb.action_mask[2]]
    assert row.numel() == 6 and torch.allclose(row, torch.full((6,), want), atol=1e-6)
    assert torch.equal(tb.old_logprobs[2][tb.action_mask[2]], T([-0.5, -0.25] * 3))
    plain = signals.token_batch(now, 0)
    assert torch.equal(token_adv[:2, : plain.action_mask.shape[1]], signals.to_tokens(adv, plain))


def test_agent_rl_replays_when_on_and_never_touches_the_buffer_when_off(tmp_path, tiny_agent, monkeypatch):
    from prmkit.agents import replay
    from prmkit.agents.rl import AgentRLConfig, AgentRLRun
    from prmkit.agents.rollout import RolloutParams, rollout
    from prmkit.agents.hopgym import make_env, make_problem

    base = dict(method="grpo", model=tiny_agent, steps=2, prompts_per_step=2, k=2, max_turns=3,
                max_action_tokens=8, eval_problems=2, eval_every=0, minibatch=2)
    on = AgentRLRun(AgentRLConfig(out=str(tmp_path / "on"), replay=2, **base))
    params = RolloutParams(k=2, max_turns=3, max_action_tokens=8, seed=99)
    tokens = [t for _, t in rollout(on.sampler, [make_problem("train", 0)], make_env, params)]
    on.models.replay.add(tokens, T([1.0, 0.0]), T([0, 0]))  # one real episode the buffer may replay
    first = on.step(0)
    assert first["replay/episodes"] == 1 and first["replay/buffer"] >= 1

    off_a = AgentRLRun(AgentRLConfig(out=str(tmp_path / "a"), **base))
    assert off_a.models.replay is None
    monkeypatch.setattr(replay, "ppo_batch", lambda *a, **k: pytest.fail("replay used while off"))
    rec_a = off_a.train()
    off_b = AgentRLRun(AgentRLConfig(out=str(tmp_path / "b"), **base))
    rec_b = off_b.train()
    assert [r.get("loss") for r in rec_a] == [r.get("loss") for r in rec_b]
    assert not any("replay/episodes" in r for r in rec_a)
    for x, y in zip(off_a.model.state_dict().values(), off_b.model.state_dict().values()):
        assert torch.equal(x, y)
