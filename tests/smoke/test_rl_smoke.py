"""Smoke: 2 RL steps of every method on the gym (tiny batches), and the `rl` / `rl-compare` commands."""

from __future__ import annotations

import json
import math

import pytest

from prmkit.rl.config import RLConfig
from prmkit.rl.methods import ADVANTAGES
from prmkit.rl.trainer import RLRun


def tiny(out, **kw) -> RLConfig:
    base = dict(out=str(out), steps=2, prompts_per_step=2, k=4, max_new_tokens=48, eval_problems=4,
                eval_every=0, prm="checker:0.1", tensorboard=False, save_policy=False, minibatch=8, threads=1)
    return RLConfig(**{**base, **kw})


@pytest.mark.parametrize("method", sorted(ADVANTAGES))
def test_two_steps_of_each_method(tmp_path, method):
    records = RLRun(tiny(tmp_path / method, reward=method, acc_filter="off")).train()
    assert [r["step"] for r in records] == [0, 1, 2]
    last = records[-1]
    assert 0.0 <= last["eval/accuracy"] <= 1.0 and last["sampled_tokens"] > 0
    assert all(math.isfinite(r["loss"]) for r in records[1:] if "loss" in r)
    assert "mon/steps_per_solution" in last and "mon/repeated_step_frac" in last
    if ADVANTAGES[method].needs_rm or method == "prime":
        assert "process_reward" in last


def test_rl_cli_writes_metrics_policy_and_tensorboard(tmp_path):
    from typer.testing import CliRunner

    from prmkit.cli import _register, app

    _register()
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["rl", "--out", str(out), "--reward", "prime", "--steps", "2",
                                      "--prompts-per-step", "2", "--k", "4", "--max-new-tokens", "48",
                                      "--eval-problems", "4", "--threads", "1"])
    assert result.exit_code == 0, result.stdout
    assert "held-out accuracy" in result.stdout
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2] and "prm/loss" in records[1]
    assert (out / "policy" / "config.json").exists() and (out / "checkpoint" / "state.pt").exists()
    assert any((out / "tb").iterdir())
    bad = CliRunner().invoke(app, ["rl", "--out", str(tmp_path / "bad"), "--reward", "nope"])
    assert bad.exit_code != 0


def test_rl_compare_cli_writes_report(tmp_path):
    from typer.testing import CliRunner

    from prmkit.cli import _register, app

    _register()
    out = tmp_path / "cmp"
    args = ["rl-compare", "--out", str(out), "--methods", "grpo", "--methods", "pure", "--seeds", "0",
            "--seeds", "1", "--steps", "2", "--prompts-per-step", "2", "--k", "4", "--eval-every", "1",
            "--eval-problems", "4", "--max-new-tokens", "48", "--prm", "checker:0.1", "--threads", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"grpo", "pure"}
    assert len(summary["methods"]["pure"]["curve_steps"]) == 3  # steps 0, 1, 2
    html = (out / "report.html").read_text()
    assert "steps to grpo final" in html and "data:image/png;base64" in html


def test_resume_with_other_settings_is_refused(tmp_path):
    from prmkit.config import save_config
    from prmkit.errors import InputError

    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "state.pt").write_bytes(b"")
    save_config(out, tiny(out, reward="grpo", lr=1e-4))
    run = RLRun(tiny(out, reward="grpo", lr=3e-5, threads=1))
    with pytest.raises(InputError, match="lr"):
        run.train()


def test_reward_model_specs():
    from prmkit.errors import InputError
    from prmkit.gym.checker_rm import GymCheckerRM
    from prmkit.rl.config import load_reward_model

    rm, desc = load_reward_model("checker:0.25")
    assert isinstance(rm, GymCheckerRM) and rm.flip_rate == 0.25 and "0.25" in desc
    with pytest.raises(InputError, match="prm"):
        load_reward_model("no-such-model")
