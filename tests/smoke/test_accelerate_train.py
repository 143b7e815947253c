"""`train prm` and `train implicit` under `accelerate launch --multi_gpu --num_processes 2` on CPU (gloo):
the logged losses and the final weights equal one process with gradient accumulation 2, and a
two-process run killed after its first checkpoint resumes to the same weights. The model is the gym
policy with its classifier dropout set to 0: dropout masks are drawn per process, so with dropout the
updates agree only in distribution (`train.distributed.own_rng`).

(`--multi_gpu` is accelerate's torchrun launcher; on a CPU-only machine accelerate 1.16 starts a
single process for plain `--num_processes 2`, and the trainers then run gloo on CPU.)"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from prmkit.gym.task import make_split, make_trace, parse_prompt
from prmkit.schema import StepLabels, write_records

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).with_name("accelerate")
TOL = 1e-5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Five gym problems, a right and a corrupted trace each, with step labels: 10 traces (prm: batches
    of 4, 4, 2, so process 1 has no micro-batch in the last) and 5 DPO pairs (batches of 4 and 1)."""
    d = tmp_path_factory.mktemp("ddp")
    rng, traces = random.Random(0), []
    for p in make_split("dev", 5):
        sol = parse_prompt(p.prompt).solution_steps()
        bad = list(sol)
        k = rng.randrange(len(bad) - 1)
        bad[k] = bad[k][:-1] + str((int(bad[k][-1]) + 1) % 10)
        bad[-1] = "A:" + str(int(bad[-1][2:]) + 1)
        for steps in (sol, bad):
            t = make_trace(p, "\n".join(steps))
            fe = t.first_error
            labels = [1.0 if fe == -1 or i < fe else 0.0 for i in range(len(steps))]
            traces.append(replace(t, labels=StepLabels(values=labels, method="test")))
    write_records(d / "traces.jsonl", traces)
    return d / "traces.jsonl"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The shipped gym policy, its token-classification head without dropout (transformers' default 0.1)."""
    import shutil

    d = tmp_path_factory.mktemp("model") / "policy"
    shutil.copytree(ROOT / "prmkit" / "gym" / "checkpoint", d)
    cfg = json.loads((d / "config.json").read_text())
    assert all(v == 0.0 for k, v in cfg.items() if "dropout" in k)       # the decoder itself has none
    (d / "config.json").write_text(json.dumps({**cfg, "classifier_dropout": 0.0}))
    return d


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PRMKIT_QUIET": "1"}


KINDS = {"prm": ["--no-loglik-feature"],                     # the backbone and its head alone
         "prm-loglik": ["--loglik-feature"],                   # + the fuse layer beside the backbone
         "implicit": ["--loss", "dpo"]}


def _args(kind: str, data: Path, model: Path, out: Path, accum: int, save_every: int = 200) -> list:
    extra = [*KINDS[kind], "--lr", "1e-3"]
    return ["train", kind.split("-")[0], "--data", str(data), "--model", str(model), "--out", str(out), "--batch-size", "2", "--grad-accum", str(accum),
            "--epochs", "4", "--threads", "1", "--fit-split", "", "--save-every", str(save_every), "--seed", "3",
            "--device", "cpu", *extra]


def _one(args: list) -> list:
    return [sys.executable, "-m", "prmkit.cli", *args]


def _two(args: list) -> list:
    return [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
            "-m", "prmkit.cli", *args]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(cmd: list, timeout: int = 300) -> None:
    r = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]


def _log(out: Path) -> list:
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def _weights(out: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(out.rglob("*.safetensors"))
    assert files, f"no weights saved in {out}"
    res = {f"{f.relative_to(out)}:{k}": v for f in files for k, v in load_file(str(f)).items()}
    loglik = json.loads((out / "prmkit_rm.json").read_text()).get("loglik")
    if loglik:                                                 # the fuse layer's (w, b) live in the config
        res["loglik"] = torch.tensor([loglik["weight"], loglik["bias"]], dtype=torch.float64)
    return res


def _max_diffs(a: Path, b: Path) -> tuple[float, float]:
    """(largest |loss difference| over the logged steps, largest |weight difference|); the logged steps
    and the weight names must be the same."""
    la, lb = _log(a), _log(b)
    assert [r["step"] for r in la] == [r["step"] for r in lb] and len(la) >= 2
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    dl = max(abs(x["loss"] - y["loss"]) for x, y in zip(la, lb))
    dw = max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)
    return dl, dw


@pytest.fixture(scope="module")
def runs(data, model, tmp_path_factory):
    """Per kind: the output dirs of one process with --grad-accum 2 and two processes with --grad-accum 1."""
    base, res = tmp_path_factory.mktemp("runs"), {}
    for kind in KINDS:
        one, two = base / f"{kind}-one", base / f"{kind}-two"
        _run(_one(_args(kind, data, model, one, accum=2)))
        _run(_two(_args(kind, data, model, two, accum=1)))
        res[kind] = (one, two)
    return res


@pytest.mark.parametrize("kind", list(KINDS))
def test_two_processes_equal_one_with_grad_accum_2(kind, runs):
    one, two = runs[kind]
    dl, dw = _max_diffs(one, two)
    print(f"{kind}: max |loss diff| {dl:.3g}, max |weight diff| {dw:.3g}")
    assert dl <= TOL and dw <= TOL, (dl, dw)
    first, final = _log(one)[0], _log(one)[-1]
    assert first["loss"] != final["loss"]                      # it trained: the loss moved
    if kind != "prm-loglik":                                   # (the fitted likelihood feature starts near 0 loss)
        assert first["loss"] > 1e-2                            # a loss the 1e-5 tolerance can tell apart


def test_killed_two_process_run_resumes(data, model, runs, tmp_path):
    one, two = runs["prm"]
    killed = tmp_path / "killed"
    args = _args("prm", data, model, killed, accum=1, save_every=1)
    proc = subprocess.Popen(_two(args), env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    state, deadline = killed / "train_state.pt", time.time() + 240
    while time.time() < deadline and proc.poll() is None and not state.exists():
        time.sleep(0.005)
    hit = state.exists() and proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)                        # the launcher and both workers
    proc.wait()
    assert hit, "the run ended before its first checkpoint could be interrupted"
    from prmkit.rundir import load_checkpoint

    ckpt = load_checkpoint(state)
    assert 0 < ckpt["step"] < ckpt["total"] and len(ckpt["rng_ranks"]) == 2
    assert not list(killed.rglob("*.safetensors"))             # killed before any model was saved
    _run(_two(args))
    dl, dw = _max_diffs(two, killed)
    dl1, dw1 = _max_diffs(one, killed)
    print(f"resumed at step {ckpt['step']}: vs uninterrupted two-process {dl:.3g}/{dw:.3g}, "
          f"vs one process {dl1:.3g}/{dw1:.3g}")
    assert max(dl, dw, dl1, dw1) <= TOL
