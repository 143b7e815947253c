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
