"""prmkit.rl.token_rewards: token rewards for an external trainer, against values computed by hand."""

import math

import pytest
import torch

from prmkit.errors import InputError
from prmkit.rl.token_rewards import token_level_rewards

# two responses of one prompt: row 0 has steps ending at tokens 1 and 3 (5 tokens), row 1 one step at 2 (4 tokens)
SCORES = torch.tensor([[0.9, 0.3], [0.6, 0.0]])
ENDS = torch.tensor([[1, 3], [2, 0]])
MASK = torch.tensor([[True, True], [True, False]])
OUT = torch.tensor([1.0, 0.0])
GROUPS = torch.tensor([0, 0])
LENS = torch.tensor([5, 4])


def run(rule, **kw):
    return token_level_rewards(rule, SCORES, ENDS, MASK, OUT, GROUPS, LENS, 6, **kw)


def test_outcome_plus_process_by_hand():
    r, keep = run("outcome+process", process_coef=0.5, outcome_coef=2.0)
    want = torch.zeros(2, 6)
    want[0, 1], want[0, 3], want[0, 4] = 0.45, 0.15, 2.0
    want[1, 2], want[1, 3] = 0.3, 0.0
    torch.testing.assert_close(r, want)
    assert keep.tolist() == [True, True]


def test_pure_min_form_by_hand():
    r, _ = run("pure", temperature=0.5, outcome_coef=0.0)
    r0 = [2 * 0.9 - 1, 2 * 0.3 - 1]  # 0.8, -0.4
    w = [math.exp(-x / 0.5) for x in r0]
    w = [x / sum(w) for x in w]
    assert r[0, 1].item() == pytest.approx(w[0] * r0[0], abs=1e-6)
    assert r[0, 3].item() == pytest.approx(w[1] * r0[1], abs=1e-6)
    assert r[1, 2].item() == pytest.approx(2 * 0.6 - 1, abs=1e-6)  # one step: weight 1
    assert int((r != 0).sum()) == 3


def test_pav_progress_by_hand():
    r, _ = run("pav", outcome_coef=0.0)
    # V before step 0 = the other row's first score (leave-one-out mean of a group of two)
    assert r[0, 1].item() == pytest.approx(0.9 - 0.6, abs=1e-6)
    assert r[0, 3].item() == pytest.approx(0.3 - 0.9, abs=1e-6)
    assert r[1, 2].item() == pytest.approx(0.6 - 0.9, abs=1e-6)


def test_prof_zeroes_dropped_rows():
    # keep 1 per group of 2 (one correct, one wrong): PROF keeps a balanced pair only when it can;
    # with keep=1 one row survives and the other's rewards are all zero
    r, keep = run("prof", prof_keep=1)
    assert int(keep.sum()) == 1
    dropped = int((~keep).nonzero()[0])
    assert bool((r[dropped] == 0).all())
    kept = int(keep.nonzero()[0])
    assert r[kept, LENS[kept] - 1].item() == OUT[kept].item()


def test_unknown_rule_is_named():
    with pytest.raises(InputError, match="unknown credit rule"):
        run("nope")
