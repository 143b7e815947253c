"""Untrusted and interrupted run directories (issue 18, items 1, 2, 5, 7, 10).

- A checkpoint whose pickle would run code is refused with an error naming it, and its code never
  runs, for every loader: `train prm` (train_state.pt), `train implicit` (ref_logprobs.pt), `rl`
  (checkpoint/state.pt), `gym train-policy` (train_state.pt).
- A resume with other data or another learning rate is refused (`train prm`, `rl`); the same path
  spelled relative or absolute is the same run.
- A `train prm` killed at a checkpoint, or during its threshold fit, resumes to a model equal tensor for
  tensor to the uninterrupted run's, running only the remaining steps (so these tests fail when
  resuming is disabled: a deterministic restart ends at the same model but runs every step).
- `rl` resumes run only the remaining steps; a failed `label` start leaves nothing that locks its run
  directory.
"""

from __future__ import annotations

import json
import os
import random
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from prmkit.errors import InputError
from prmkit.gym.task import make_split, make_trace, parse_prompt
from prmkit.schema import StepLabels, read_traces, write_records

STEPS = 8  # 16 traces, 4 per step, 2 epochs


# --------------------------------------------------------------------------- helpers

class _Payload:
    """Unpickling this object runs a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


def _plant_payload(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "step": _Payload(marker), "keys": [], "logprobs": []}, path)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """16 gym traces (a right and a corrupted solution per problem) with step labels and gold first errors."""
    d = tmp_path_factory.mktemp("resume-data")
    rng = random.Random(0)
    traces = []
    for p in make_split("dev", 8):
        sol = parse_prompt(p.prompt).solution_steps()
        bad = list(sol)
        k = rng.randrange(len(bad) - 1)
        bad[k] = bad[k][:-1] + str((int(bad[k][-1]) + 1) % 10)
        for steps in (sol, bad):
            t = make_trace(p, "\n".join(steps))
            labels = [1.0 if t.first_error == -1 or i < t.first_error else 0.0 for i in range(len(steps))]
            traces.append(replace(t, labels=StepLabels(values=labels, method="test")))
    write_records(d / "traces.jsonl", traces)
    return d / "traces.jsonl"


def _prm_cfg(out, data, **kw):
    from prmkit.train.prm import TrainPRMConfig

    base = dict(out=str(out), data=str(data), fit_data=str(data), epochs=2.0, batch_size=4, lr=1e-3,
                save_every=3, threads=1)
    return TrainPRMConfig(**{**base, **kw})


@pytest.fixture
def loss_calls(monkeypatch):
    """Counts the micro-batches `train prm` runs; `kill_at[0] = n` raises KeyboardInterrupt (a kill) at call n."""
    import prmkit.train.prm as prm

    real, calls, kill_at = prm.step_loss_fn, [], [0]

    def factory(rm):
        fn = real(rm)

        def counted(micro):
            calls.append(len(micro))
            if len(calls) == kill_at[0]:
                raise KeyboardInterrupt("simulated kill")
            return fn(micro)
        return counted

    monkeypatch.setattr(prm, "step_loss_fn", factory)
    return calls, kill_at


def _tensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    assert files, f"no weights in {model_dir}"
    out = {}
    for f in files:
        out.update(load_file(f))
    return out


def _assert_same_model(a: Path, b: Path) -> None:
    ta, tb = _tensors(a), _tensors(b)
    assert sorted(ta) == sorted(tb)
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    ca, cb = (json.loads((d / "prmkit_rm.json").read_text()) for d in (a, b))
    assert ca["threshold"] == cb["threshold"] and ca.get("loglik") == cb.get("loglik")


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """The uninterrupted `train prm` run."""
    from prmkit.train.prm import run

    out = tmp_path_factory.mktemp("prm-ref") / "prm"
    run(_prm_cfg(out, data))
    return out


def _kill(run_cfg, loss_calls, at: int) -> None:
    from prmkit.train.prm import run

    calls, kill_at = loss_calls
    kill_at[0] = at
    with pytest.raises(KeyboardInterrupt):
        run(run_cfg)
    calls.clear()
    kill_at[0] = 0


# --------------------------------------------------------------------------- 1. payload checkpoints

def test_the_planted_payload_is_live(tmp_path):
    # the payload used below does run when loaded the unsafe way (so its absence below means something)
    marker, path = tmp_path / "ran", tmp_path / "state.pt"
    _plant_payload(path, marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def _payload_train_prm(out, data):
    from prmkit.train.prm import run

    run(_prm_cfg(out, data))


def _payload_train_implicit(out, data):
    from prmkit.train.implicit import TrainImplicitConfig, run

    run(TrainImplicitConfig(out=str(out), data=str(data), epochs=1.0, batch_size=8, fit_split="", threads=1))


def _payload_rl(out, data):
    from prmkit.rl.config import RLConfig
    from prmkit.rl.trainer import RLRun

    RLRun(RLConfig(out=str(out), steps=2, prompts_per_step=2, k=2, max_new_tokens=32, eval_problems=2,
                   tensorboard=False, save_policy=False, threads=1)).train()


def _payload_gym_policy(out, data):
    from prmkit.gym.train_policy import TrainPolicyConfig, run

    run(TrainPolicyConfig(out=str(out), steps=4, batch_size=2, hidden_size=16, num_layers=1, num_heads=2,
                          save_every=2))


@pytest.mark.parametrize("start,file", [(_payload_train_prm, "train_state.pt"),
                                        (_payload_train_implicit, "ref_logprobs.pt"),
                                        (_payload_rl, "checkpoint/state.pt"),
                                        (_payload_gym_policy, "train_state.pt")],
                         ids=["train-prm", "train-implicit", "rl", "gym-train-policy"])
def test_payload_checkpoint_is_refused_and_runs_nothing(tmp_path, data, start, file):
    out, marker = tmp_path / "run", tmp_path / "payload-ran"
    _plant_payload(out / file, marker)
    with pytest.raises(InputError) as e:
        start(out, data)
    assert file.split("/")[-1] in str(e.value) and "not loaded" in str(e.value)
    assert not marker.exists(), "the checkpoint's pickled code ran"
    assert not (out / "train_log.jsonl").exists() and not (out / "metrics.jsonl").exists()  # nothing trained


def test_torn_checkpoint_is_refused_by_name(tmp_path, data, loss_calls):
    out = tmp_path / "run"
    out.mkdir()
    (out / "train_state.pt").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(InputError, match="train_state.pt"):
        _payload_train_prm(out, data)
    assert loss_calls[0] == []


# --------------------------------------------------------------------------- 2. mismatched resume

@pytest.mark.parametrize("change", ["lr", "data"])
def test_train_prm_resume_with_other_data_or_lr_is_refused(tmp_path, data, loss_calls, change):
    from prmkit.train.prm import run

    out = tmp_path / "prm"
    _kill(_prm_cfg(out, data), loss_calls, at=5)
    state = (out / "train_state.pt").read_bytes()
    if change == "lr":
        cfg = _prm_cfg(out, data, lr=3e-4)
    else:
        other = tmp_path / "other.jsonl"
        write_records(other, read_traces(data)[:12])
        cfg = _prm_cfg(out, other, fit_data=str(data))
    with pytest.raises(InputError, match=f"different options \\({change}:"):
        run(cfg)
    assert loss_calls[0] == [] and (out / "train_state.pt").read_bytes() == state


def test_same_file_under_another_name_or_with_new_content(tmp_path, data):
    from prmkit.rundir import check_resume, record_config
    from prmkit.train.prm import TrainPRMConfig

    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(data.read_bytes())
    record_config(tmp_path, TrainPRMConfig(data=str(data)))
    check_resume(tmp_path, TrainPRMConfig(data=str(copy)), has_work=True)       # the same content elsewhere
    copy.write_bytes(data.read_bytes()[:-200])
    record_config(tmp_path, TrainPRMConfig(data=str(copy)))
    copy.write_bytes(data.read_bytes())                                          # same name, new content
    with pytest.raises(InputError, match="data"):
        check_resume(tmp_path, TrainPRMConfig(data=str(copy)), has_work=True)
    check_resume(tmp_path, TrainPRMConfig(data="elsewhere"), has_work=False)     # no work: nothing to protect
    model = tmp_path / "model"
    model.mkdir()
    record_config(tmp_path, TrainPRMConfig(data=str(data), model=os.path.relpath(model)))
    check_resume(tmp_path, TrainPRMConfig(data=str(data), model=str(model)), has_work=True)
    with pytest.raises(InputError, match="model"):
        check_resume(tmp_path, TrainPRMConfig(data=str(data), model=str(data.parent)), has_work=True)


def test_relative_and_absolute_paths_are_the_same_run(tmp_path, data, loss_calls, reference, monkeypatch):
    from prmkit.train.prm import run

    out = tmp_path / "prm"
    _kill(_prm_cfg(out, data), loss_calls, at=5)         # absolute paths; checkpoint after step 3
    monkeypatch.chdir(data.parent)
    rel_out = os.path.relpath(out, data.parent)
    run(_prm_cfg(rel_out, data.name, fit_data=data.name))
    assert len(loss_calls[0]) == STEPS - 3
    _assert_same_model(reference, out)


# --------------------------------------------------------------------------- 3. kill and resume, train prm

@pytest.mark.parametrize("kill_call,checkpoint", [(4, 3), (8, 6)],
                         ids=["killed-right-after-checkpoint-3", "killed-two-steps-after-checkpoint-6"])
def test_train_prm_killed_at_a_checkpoint_resumes_bit_identical(tmp_path, data, loss_calls, reference,
                                                              kill_call, checkpoint):
    from prmkit.rundir import load_checkpoint
    from prmkit.train.prm import run

    out = tmp_path / "prm"
    _kill(_prm_cfg(out, data), loss_calls, at=kill_call)
    assert load_checkpoint(out / "train_state.pt")["step"] == checkpoint
    run(_prm_cfg(out, data))
    assert len(loss_calls[0]) == STEPS - checkpoint     # only the remaining steps ran
    _assert_same_model(reference, out)
    steps = [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [json.loads(x)["step"] for x in (reference / "train_log.jsonl").read_text().splitlines()]
    assert not (out / "train_state.pt").exists()


def test_train_prm_sigkilled_after_a_checkpoint_resumes_bit_identical(tmp_path, data, loss_calls):
    """A real SIGKILL of `prmkit train prm` once its first checkpoint is on disk, then the same command."""
    import signal
    import subprocess
    import sys
    import time

    from prmkit.rundir import load_checkpoint
    from prmkit.train.prm import run

    long = dict(epochs=5.0, save_every=2)                 # 20 steps: the kill lands well before the end
    ref = tmp_path / "ref"
    run(_prm_cfg(ref, data, **long))
    loss_calls[0].clear()
    out = tmp_path / "killed"
    args = ["train", "prm", "--out", str(out), "--data", str(data), "--fit-data", str(data), "--epochs", "5",
            "--batch-size", "4", "--lr", "1e-3", "--save-every", "2", "--threads", "1"]
    env = {**os.environ, "PRMKIT_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from prmkit.cli import main; main()", *args],
                            cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    state, deadline = out / "train_state.pt", time.time() + 300
    while time.time() < deadline and proc.poll() is None and not state.exists():
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = load_checkpoint(state)["step"]
    assert 2 <= done < 20
    run(_prm_cfg(out, data, **long))
    assert len(loss_calls[0]) == 20 - done
    _assert_same_model(ref, out)


def test_train_prm_killed_during_the_threshold_fit_loses_no_training(tmp_path, data, loss_calls, reference,
                                                                    monkeypatch):
    import prmkit.evaluate.processbench as pb
    from prmkit.rundir import load_checkpoint
    from prmkit.train.prm import run

    out = tmp_path / "prm"
    real = pb.fit_model_threshold

    def killed(*a, **k):
        raise KeyboardInterrupt("simulated kill during the fit")

    monkeypatch.setattr(pb, "fit_model_threshold", killed)
    with pytest.raises(KeyboardInterrupt):
        run(_prm_cfg(out, data))
    assert len(loss_calls[0]) == STEPS and load_checkpoint(out / "train_state.pt")["step"] == STEPS
    loss_calls[0].clear()
    monkeypatch.setattr(pb, "fit_model_threshold", real)
    run(_prm_cfg(out, data))
    assert loss_calls[0] == []                           # no training step again: only the fit ran
    _assert_same_model(reference, out)
    assert not (out / "train_state.pt").exists()


def test_a_failed_threshold_fit_keeps_the_weights_and_says_how_to_refit(tmp_path, data, loss_calls, reference,
                                                                         monkeypatch):
    import prmkit.evaluate.processbench as pb
    from prmkit.train.prm import run

    out = tmp_path / "prm"
    real = pb.fit_model_threshold

    def failing(*a, **k):
        raise ValueError("no threshold separates these scores")

    monkeypatch.setattr(pb, "fit_model_threshold", failing)
    with pytest.raises(RuntimeError, match="rerun the same command") as e:
        run(_prm_cfg(out, data))
    assert "no threshold separates" in str(e.value) and (out / "train_state.pt").exists()
    assert not (out / "prmkit_rm.json").exists()
    loss_calls[0].clear()
    monkeypatch.setattr(pb, "fit_model_threshold", real)
    run(_prm_cfg(out, data, fit_problems=5))             # a rerun (fit options may change): no training step
    assert loss_calls[0] == []
    _assert_same_model(reference, out)


# --------------------------------------------------------------------------- rl

def _rl_cfg(out, **kw):
    from prmkit.rl.config import RLConfig

    base = dict(out=str(out), reward="grpo", steps=4, prompts_per_step=2, k=2, max_new_tokens=48, eval_problems=4,
                eval_every=2, tensorboard=False, save_policy=False, lr=1e-3, minibatch=4, threads=1)
    return RLConfig(**{**base, **kw})


def _counted(run):
    steps = []
    real = run.train_step

    def train_step(step):
        steps.append(step)
        return real(step)

    run.train_step = train_step
    return steps


def _records(out):
    return [{k: v for k, v in json.loads(x).items() if not k.startswith("time/")}
            for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_rl_resume_runs_only_the_remaining_steps(tmp_path):
    from prmkit.rl.trainer import RLRun

    full, part = tmp_path / "full", tmp_path / "part"
    RLRun(_rl_cfg(full)).train()
    RLRun(_rl_cfg(part, stop_after=2)).train()
    resumed = RLRun(_rl_cfg(part))
    steps = _counted(resumed)
    resumed.train()
    assert steps == [2, 3]
    assert _records(full) == _records(part)


@pytest.mark.parametrize("change", ["lr", "problems"])
def test_rl_resume_with_other_settings_or_problems_is_refused(tmp_path, change):
    from prmkit.rl.trainer import RLRun
    from prmkit.schema import write_records as write

    problems = tmp_path / "problems.jsonl"
    write(problems, make_split("train", 8))
    out = tmp_path / "run"
    RLRun(_rl_cfg(out, problems=str(problems), stop_after=1)).train()
    state = (out / "checkpoint" / "state.pt").read_bytes()
    if change == "lr":
        cfg = _rl_cfg(out, problems=str(problems), lr=5e-4)
    else:
        write(problems, make_split("train", 8)[::-1])   # the same file name with other problems
        cfg = _rl_cfg(out, problems=str(problems))
    run = RLRun(cfg)
    steps = _counted(run)
    with pytest.raises(InputError, match=f"different options \\({change}:"):
        run.train()
    assert steps == [] and (out / "checkpoint" / "state.pt").read_bytes() == state


# --------------------------------------------------------------------------- label

def test_label_with_a_missing_model_writes_nothing_and_the_fixed_rerun_runs(tmp_path):
    from prmkit.label.run import LabelConfig, run

    traces = tmp_path / "traces.jsonl"
    write_records(traces, [make_trace(p, "\n".join(parse_prompt(p.prompt).solution_steps()))
                           for p in make_split("dev", 2)])
    out = tmp_path / "label"
    with pytest.raises(Exception):
        run(LabelConfig(method="mc", traces=str(traces), out=str(out), model=str(tmp_path / "missing"), k=1))
    assert not out.exists() or list(out.iterdir()) == []
    run(LabelConfig(method="mc", traces=str(traces), out=str(out), k=1, max_new_tokens=32))
    assert len(read_traces(out / "labels.jsonl")) == 2


def test_label_run_dir_of_a_failed_start_is_not_locked(tmp_path):
    from prmkit.label.run import LabelConfig, run
    from prmkit.rundir import record_config

    traces = tmp_path / "traces.jsonl"
    write_records(traces, [make_trace(p, "\n".join(parse_prompt(p.prompt).solution_steps()))
                           for p in make_split("dev", 2)])
    out = tmp_path / "label"
    record_config(out, LabelConfig(method="mc", traces=str(traces), out=str(out), k=5))  # a start that died
    (out / "labels.jsonl").write_bytes(b"")
    run(LabelConfig(method="verify", traces=str(traces), out=str(out)))
    assert len(read_traces(out / "labels.jsonl")) == 2
    with pytest.raises(InputError, match="different options \\(method:"):   # now there is work to protect
        run(LabelConfig(method="mc", traces=str(traces), out=str(out), k=5))
    rel = os.path.relpath(traces)
    run(LabelConfig(method="verify", traces=rel, out=str(out)))            # the same file, spelled relative


def test_train_prm_with_a_missing_model_writes_nothing(tmp_path, data):
    from prmkit.train.prm import run

    out = tmp_path / "prm"
    with pytest.raises(Exception):
        run(_prm_cfg(out, data, model=str(tmp_path / "missing")))
    assert not out.exists()
