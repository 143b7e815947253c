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
