"""The checks and RNG rule of data-parallel training (`prmkit.train.distributed`); the two-process runs
themselves are in tests/smoke/test_accelerate_train.py."""

from __future__ import annotations

import pytest
import torch

from prmkit.errors import InputError
from prmkit.train.distributed import World, check_launch, launched, own_rng


@pytest.mark.parametrize("var,name", [("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")])
def test_sharded_launch_is_refused(monkeypatch, var, name):
    monkeypatch.setenv(var, "true")
    with pytest.raises(InputError, match=name):
        check_launch()
    monkeypatch.setenv(var, "false")
    check_launch()


def test_launched_reads_world_size(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched()


def test_gym_recipe_under_a_launcher_is_refused_before_loading(monkeypatch, tmp_path):
    from prmkit.train.inputs import check_train_inputs
    from prmkit.train.prm import TrainPRMConfig

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError, match="--data"):
        check_train_inputs(TrainPRMConfig(out=str(tmp_path / "run")), "prm")
    assert not (tmp_path / "run").exists()


def test_each_process_draws_its_own_dropout_masks(capsys):
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.25))
    torch.manual_seed(11)
    own_rng(model, seed=5, w=World(rank=1, size=2))
    got = torch.rand(4)
    torch.manual_seed(5 * 1_000_003 + 1)
    assert torch.equal(got, torch.rand(4))                   # process 1: reseeded from (seed, rank)
    assert capsys.readouterr().err == ""                     # only process 0 speaks

    torch.manual_seed(11)
    own_rng(model, seed=5, w=World(rank=0, size=2))
    got = torch.rand(4)
    torch.manual_seed(11)
    assert torch.equal(got, torch.rand(4))                   # process 0 keeps the one-process stream
    assert "dropout (p = 0.25)" in capsys.readouterr().err

    torch.manual_seed(11)
    own_rng(model, seed=5, w=World())                         # one process: nothing changes, nothing said
    got = torch.rand(4)
    torch.manual_seed(11)
    assert torch.equal(got, torch.rand(4)) and capsys.readouterr().err == ""


def test_resume_with_other_optimizer_batches_is_refused(tmp_path):
    """A checkpoint of 8-example optimizer batches (e.g. 2 processes x 4) is not continued with 4-example
    ones, even where the step count agrees (8 examples: 1 step of 8 twice = 2 steps of 4)."""
    from prmkit.train.loop import STATE_FILE, LoopSettings, _checkpoint, train_loop

    model = torch.nn.Linear(2, 1)
    examples = [torch.tensor([float(i), 1.0]) for i in range(8)]

    def loss_fn(micro):
        return sum(model(x).pow(2).sum() for x in micro), {}

    s = LoopSettings(out=tmp_path, batch_size=4, epochs=1.0, save_every=1)
    _checkpoint(tmp_path / STATE_FILE, model, None, 1, 2, 8, {}, per_step=8)
    with pytest.raises(InputError, match="batches of 8 examples, not 4"):
        train_loop(model, examples, loss_fn, s)
    _checkpoint(tmp_path / STATE_FILE, model, torch.optim.AdamW(model.parameters()), 1, 2, 8, {}, per_step=4)
    train_loop(model, examples, loss_fn, s)                  # the same batches: resumes and finishes
    assert not (tmp_path / STATE_FILE).exists()
