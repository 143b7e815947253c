"""RL says when a step learns nothing: zero-variance group share every step, a warning when no
advantage is non-zero, and PRIME's empty accuracy filter skips the PRM update without NaN."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from prmkit.rl.advantages import no_update_reason, zero_variance_group_share


def test_zero_variance_group_share_by_hand():
    r = torch.tensor([1., 1., 0., 1., 0., 0., 0., 0., 1., 1., 1., 1.])
    assert zero_variance_group_share(r, 4) == pytest.approx(2 / 3)          # groups 2 and 3 are constant
    ids = torch.tensor([7, 3, 7, 3, 5, 5])                                   # any ids, any order
    assert zero_variance_group_share(torch.tensor([1., .5, 1., .5, 0., 1.]), ids) == pytest.approx(2 / 3)
    assert zero_variance_group_share(torch.tensor([0., 1., 0., 1.]), 2) == 0.0
    assert zero_variance_group_share(torch.zeros(0), torch.zeros(0, dtype=torch.long)) == 0.0


def test_no_update_reason_by_hand():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    zero = torch.zeros(2, 3)
    assert "filter kept none" in no_update_reason(zero, mask, torch.tensor([], dtype=torch.long), 0.5)
    assert "100% of groups" in no_update_reason(zero, mask, torch.tensor([0, 1]), 1.0)
    padded_only = torch.tensor([[0., 0., 3.], [0., 2., 0.]])                 # non-zero only on padding
    assert no_update_reason(padded_only, mask, torch.tensor([0, 1]), 1.0) is not None
    live = torch.tensor([[0., 0., 0.], [0.5, 0., 0.]])
    assert no_update_reason(live, mask, torch.tensor([0, 1]), 0.0) is None
    assert no_update_reason(live, mask, torch.tensor([0]), 0.0) is not None  # the live row is not kept


@pytest.fixture()
def impossible(tmp_path):
    """Gym problems whose reference answer no chain reaches: every reward is 0."""
    from prmkit.gym.task import make_split
    from prmkit.schema import write_records

    path = tmp_path / "impossible.jsonl"
    write_records(path, [replace(p, answer="-999") for p in make_split("train", 4)])
    return str(path)


def _records(out):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x, parse_constant=lambda c: pytest.fail(f"metrics.jsonl holds {c}")) for x in lines]


def test_grpo_with_all_zero_rewards_logs_and_warns(tmp_path, impossible):
    from prmkit.rl.trainer import RLRun
    from tests.smoke.test_rl_smoke import tiny

    out = tmp_path / "grpo"
    with pytest.warns(UserWarning, match="updates nothing.*100% of groups have zero reward variance"):
        RLRun(tiny(out, reward="grpo", problems=impossible, steps=1, acc_filter="off")).train()
    rec = _records(out)[1]
    assert rec["train/accuracy"] == 0.0 and rec["zero_var_group_share"] == 1.0
    assert any("updates nothing" in w for w in rec["warnings"])


def test_prime_filter_keeping_nothing_skips_the_prm_update(tmp_path, impossible):
    from prmkit.rl.trainer import RLRun
    from tests.smoke.test_rl_smoke import tiny

    out = tmp_path / "prime"
    with pytest.warns(UserWarning) as caught:
        RLRun(tiny(out, reward="prime", problems=impossible, steps=1, acc_filter="on")).train()
    said = [str(w.message) for w in caught]
    assert any("implicit PRM update skipped: the accuracy filter kept 0 of 8 rows" in m for m in said)
    assert any("filter kept none" in m for m in said)
    rec = _records(out)[1]   # parse_constant fails on NaN
    assert rec["kept_rows"] == 0 and rec["prm/rows"] == 0 and rec["prm/skipped"] is True
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in rec.values())
