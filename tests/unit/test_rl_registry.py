"""prmkit.rl.methods' registry (a method = one decorated function with explicit arguments) and the
lifecycle pieces shared by `prmkit rl` and `prmkit agent rl`, against values computed by hand."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest
import torch

from prmkit.errors import InputError
from prmkit.rl.config import RLConfig, resume_ignores
from prmkit.rl.lifecycle import eval_due, load_state, mean_stats, ppo_updates, records_upto, save_state
from prmkit.rl.methods import ADVANTAGES, BATCH_INPUTS, MethodResult, advantage_method, compute_advantages
from prmkit.rl.rollout import build_batch


def two_groups():
    """Two prompts x two responses; every response has 3 tokens and one step ending on token 1."""
    b = build_batch([[1, 5]] * 4, [[7, 8, 2]] * 4, [[1]] * 4, [1.0, 0.0, 1.0, 1.0], [0, 0, 1, 1], pad_id=0)
    b.step_scores = torch.tensor([[0.9], [0.2], [0.6], [0.4]])
    return b


@pytest.fixture
def toy_method():
    """A method registered for the test only: advantage = outcome_coef * (outcome - group mean) + process_coef *
    (step score - 0.5) on every token; it keeps the rows whose outcome is 1."""
    name = "toy-centred"

    @advantage_method(name, needs=("rm_scores",))
    def toy(outcomes, groups, response_mask, step_scores, process_coef, outcome_coef):
        mean = torch.stack([outcomes[groups == g].mean() for g in groups])  # (B,)
        per_row = outcome_coef * (outcomes - mean) + process_coef * (step_scores[:, 0] - 0.5)  # (B,)
        return MethodResult(per_row[:, None] * response_mask, keep=outcomes > 0.5)

    yield name
    ADVANTAGES.pop(name)


def test_a_decorated_function_is_a_method(toy_method):
    b = two_groups()
    adv = compute_advantages(toy_method, b, RLConfig(outcome_coef=2.0, process_coef=0.5))
    # group 0: outcomes (1, 0), mean 0.5; group 1: (1, 1), mean 1. Row 1 (outcome 0) is dropped.
    want = [2.0 * 0.5 + 0.5 * 0.4, 0.0, 2.0 * 0.0 + 0.5 * 0.1, 2.0 * 0.0 + 0.5 * -0.1]
    assert torch.allclose(adv, torch.tensor(want)[:, None].expand(4, 3), atol=1e-6)
    assert b.loss_rows.tolist() == [True, False, True, True]
    assert ADVANTAGES[toy_method].needs_rm and not ADVANTAGES[toy_method].auto_filter
    assert "prm" not in resume_ignores(RLConfig(reward=toy_method))
    b.step_scores = None
    with pytest.raises(ValueError, match="step_scores"):
        compute_advantages(toy_method, b, RLConfig())


def test_registration_refuses_duplicates_unknown_needs_and_missing_options():
    with pytest.raises(ValueError, match="twice"):
        advantage_method("grpo")(lambda outcomes: outcomes)
    with pytest.raises(ValueError, match="unknown needs"):
        advantage_method("x", needs=("a critic",))
    name = "toy-missing-option"
    advantage_method(name)(lambda outcomes, no_such_option: outcomes)
    try:
        with pytest.raises(InputError, match="no_such_option"):
            compute_advantages(name, two_groups(), RLConfig())
    finally:
        ADVANTAGES.pop(name)


def test_every_method_reads_only_batch_values_and_options_and_declares_its_needs():
    options = {f.name for f in dataclasses.fields(RLConfig)}
    assert {"grpo", "rloo", "prime", "pure", "pav"} <= set(ADVANTAGES)  # (no closed list: adding a method edits no test)
    for name, m in ADVANTAGES.items():
        params = set(inspect.signature(m.fn).parameters)
        assert params <= set(BATCH_INPUTS) | {"process_coef"} | options, (name, params)
        assert ("step_scores" in params) == m.needs_rm, name  # reads a reward model's scores iff it needs one
        assert ("token_rewards" in params) == ("implicit_prm" in m.needs), name
    assert [n for n, m in ADVANTAGES.items() if m.auto_filter] == ["prime"]


def test_eval_schedule():
    assert [d for d in range(1, 11) if eval_due(d, 10, 4)] == [4, 8, 10]
    assert [d for d in range(1, 6) if eval_due(d, 5, 0)] == [5]


def test_ppo_updates_walks_seeded_minibatches_and_steps_once_each():
    w = torch.nn.Parameter(torch.zeros(1))
    model = torch.nn.Module()
    model.w = w
    opt = torch.optim.SGD([w], lr=0.1)
    seen = []

    def loss_fn(mb):
        seen.append(mb.tolist())
        return w.sum() * len(mb), {"size": torch.tensor(float(len(mb)))}

    rows = torch.tensor([3, 5, 7, 9, 11])
    stats = ppo_updates(model, opt, rows, loss_fn, generator=torch.Generator().manual_seed(7), epochs=2,
                        minibatch=2, grad_clip=100.0)
    g = torch.Generator().manual_seed(7)
    want = []
    for _ in range(2):
        order = rows[torch.randperm(5, generator=g)].tolist()
        want += [order[0:2], order[2:4], order[4:5]]
    assert seen == want
    assert stats["size"] == [2.0, 2.0, 1.0, 2.0, 2.0, 1.0]
    # d(loss)/dw = minibatch size; SGD moves w by -0.1 * size per step: total -0.1 * 10
    assert w.item() == pytest.approx(-1.0)
    assert mean_stats({"a": [1.0, 2.0], "b": []}) == {"a": 1.5}


def test_state_round_trip_and_missing_part(tmp_path):
    src, dst = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    path = tmp_path / "state.pt"
    save_state(path, {"policy": src, "extra": None}, step=3)
    state = load_state(path, {"policy": dst, "extra": None})
    assert state["step"] == 3 and torch.equal(dst.weight, src.weight) and "extra" not in state
    assert load_state(tmp_path / "absent.pt", {"policy": dst}) is None
    with pytest.raises(InputError, match="'critic'"):
        load_state(path, {"policy": dst, "critic": torch.nn.Linear(2, 1)})
    assert load_state(path, {"policy": dst, "critic": torch.nn.Linear(2, 1)}, optional=("critic",))["step"] == 3


def test_records_upto(tmp_path):
    recs = [{"step": 0, "a": 0.5}, {"step": 1}, {"step": 2, "b": [1]}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert records_upto(path, 1) == recs[:2]
    assert records_upto(tmp_path / "none.jsonl", 5) == []
