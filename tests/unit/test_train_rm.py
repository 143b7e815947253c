"""Training helpers against hand-computed values: label masking after the first negative, DPO pair
building, epoch batching and the learning-rate schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from prmkit.schema import Trace
from prmkit.train.implicit import dpo_pairs
from prmkit.train.loop import LoopSettings, epoch_batches, lr_at, num_steps
from prmkit.train.prm import until_first_negative


def test_until_first_negative():
    assert until_first_negative([1.0, 1.0, 0.0, 1.0, 0.0]) == [1.0, 1.0, 0.0, None, None]
    assert until_first_negative([None, 0.4, 1.0]) == [None, 0.4, None]      # soft 0.4 < 0.5 counts as negative
    assert until_first_negative([1.0, 0.75, 0.5]) == [1.0, 0.75, 0.5]
    assert until_first_negative([]) == []


def _t(pid: str, outcome: float) -> Trace:
    return Trace(problem_id=pid, prompt="Q", steps=["s"], outcome=outcome)


def test_dpo_pairs_stay_within_a_problem_and_use_each_response_once():
    traces = [_t("a", 1.0), _t("a", 0.0), _t("a", 0.0), _t("b", 1.0), _t("b", 1.0), _t("c", 0.0),
              _t("d", 0.0), _t("d", 1.0), _t("d", 1.0), _t("d", 0.0)]
    pairs = dpo_pairs(traces, seed=0)
    assert len(pairs) == 3                       # a: 1 pair, b and c: none (one-sided), d: 2 pairs
    for c, w in pairs:
        assert traces[c].problem_id == traces[w].problem_id
        assert traces[c].outcome == 1.0 and traces[w].outcome == 0.0
    used = [i for p in pairs for i in p]
    assert len(used) == len(set(used))
    assert dpo_pairs(traces, seed=0) == pairs


def test_epoch_batches_cover_each_example_once_and_group_lengths():
    s = LoopSettings(out=Path("."), batch_size=4, grad_accum=2, seed=3)
    lengths = [(i * 37) % 23 for i in range(40)]
    for lens in (None, lengths):
        batches = epoch_batches(40, 0, s, lens)
        assert sorted(i for b in batches for i in b) == list(range(40))
        assert all(len(b) == 8 for b in batches)
        assert epoch_batches(40, 0, s, lens) == batches
        assert epoch_batches(40, 1, s, lens) != batches
    # grouping: within a window of 16 batches the lengths are sorted, so a batch spans few lengths
    grouped = epoch_batches(40, 0, s, lengths)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in grouped)
    plain = epoch_batches(40, 0, s, None)
    assert spread < sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plain)
    # same optimizer batches for 4x2 and 8x1
    assert epoch_batches(40, 0, LoopSettings(out=Path("."), batch_size=8, grad_accum=1, seed=3), lengths) == grouped


def test_lr_schedule_and_step_count_by_hand():
    s = LoopSettings(out=Path("."), lr=1.0, warmup_ratio=0.1, batch_size=5, grad_accum=2, epochs=2.5)
    assert num_steps(95, s) == math.ceil(10 * 2.5)            # 10 batches per epoch
    total = 100
    assert lr_at(0, total, s) == pytest.approx(0.1)           # warmup of 10 steps
    assert lr_at(9, total, s) == pytest.approx(1.0)
    assert lr_at(10, total, s) == pytest.approx(1.0)          # cosine starts at the peak
    assert lr_at(55, total, s) == pytest.approx(0.5)          # halfway through the decay
    assert lr_at(99, total, s) == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))


def test_step_loglik_feature_matches_per_prefix_brute_force():
    """The likelihood feature of step k = log p(step k's text | prompt + earlier steps) under the LM,
    computed here independently: one forward pass per step prefix, summing the step's own tokens
    (TRL layout: the separator read after each step is not part of the sum)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    from prmkit.lm import token_logprobs
    from prmkit.resolve import default_policy
    from prmkit.lm.batching import pad_batch, prompt_lengths
    from prmkit.rewards.discriminative import DiscriminativePRM

    gym_policy = default_policy()
    tok = AutoTokenizer.from_pretrained(gym_policy)
    lm = AutoModelForCausalLM.from_pretrained(gym_policy)
    torch.manual_seed(0)
    head = AutoModelForTokenClassification.from_pretrained(gym_policy, num_labels=2)
    rm = DiscriminativePRM(head, tok, readout="trl", loglik_lm=lm, loglik={"lm": "x", "weight": 2.0, "bias": -1.0})
    traces = [("Q:7,+3,*2\n", ["7+3=10", "10*2=20", "A:20"]), ("Q:4,-1\n", ["4-1=2", "A:2"])]
    encs = [rm.encode(p, s) for p, s in traces]
    ids, attn, ends = pad_batch(encs, rm.pad_id)
    got = rm.step_loglik(ids, attn, ends, prompt_lengths(encs))
    for row, (prompt, steps) in enumerate(traces):
        for k, step in enumerate(steps):
            before = [tok.bos_token_id]
            ctx = before + tok(prompt + "".join(s + "\n" for s in steps[:k]), add_special_tokens=False)["input_ids"]
            full = ctx + tok(step, add_special_tokens=False)["input_ids"]
            lp = token_logprobs(lm, torch.tensor([full]), torch.ones(1, len(full), dtype=torch.long))[0]
            want = float(lp[len(ctx) - 1:].sum())
            assert math.isclose(float(got[row, k]), want, rel_tol=1e-4, abs_tol=1e-4), (row, k)
    assert float(got[1, 2]) == 0.0  # padding step
    # an empty step has no tokens of its own: it is scored by its separator's log-likelihood (not 0)
    e = rm.encode("Q:4,-1\n", [""])
    ids1, attn1, ends1 = pad_batch([e], rm.pad_id)
    ll_empty = rm.step_loglik(ids1, attn1, ends1, prompt_lengths([e]))
    ctx = [tok.bos_token_id] + tok("Q:4,-1\n", add_special_tokens=False)["input_ids"]
    full = ctx + tok("\n", add_special_tokens=False)["input_ids"]
    lp = token_logprobs(lm, torch.tensor([full]), torch.ones(1, len(full), dtype=torch.long))[0]
    assert math.isclose(float(ll_empty[0, 0]), float(lp[-1]), rel_tol=1e-4) and float(ll_empty[0, 0]) < -1.0
    # the logit adds w * ll + b to the head's log-odds
    with torch.no_grad():
        rm_plain = DiscriminativePRM(head, tok, readout="trl")
        base = rm_plain.step_logits(ids, attn, ends)
        fused = rm.step_logits(ids, attn, ends, prompt_lengths(encs))
    assert torch.allclose(fused[0], base[0] + 2.0 * got[0] - 1.0, atol=1e-5)


def test_warmup_cosine_by_hand():
    from prmkit.lm.schedule import warmup_cosine

    # lr 1, warmup 2, 6 steps: 0.5, 1.0, then cos decay over 4 steps: 1, (1+cos(pi/4))/2, 0.5, (1-cos(pi/4))/2
    got = [warmup_cosine(s, 1.0, 2, 6) for s in range(6)]
    r = 0.5 ** 0.5 / 2
    assert got == pytest.approx([0.5, 1.0, 1.0, 0.5 + r, 0.5, 0.5 - r])
