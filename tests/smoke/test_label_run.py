"""`prmkit label` end to end: resume after SIGKILL is byte-identical, Ray equals local, the
label report runs, and mismatched reruns are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prmkit.errors import InputError
from prmkit.label.run import LabelConfig, resume_point, run
from prmkit.schema import read_traces, write_records

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")  # (tests/conftest.py)


@pytest.fixture(scope="module")
def traces_file(tmp_path_factory, gym_policy):
    from prmkit.gym.task import make_split
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.sample import sample_traces

    traces = sample_traces(gym_policy, make_split("test", 6), SamplingParams(n=4, max_new_tokens=96, seed=11))
    path = tmp_path_factory.mktemp("label") / "traces.jsonl"
    write_records(path, traces)
    return path


def _cfg(traces_file, out, **kw):
    base = dict(method="mc", traces=str(traces_file), out=str(out), k=2, chunk=2, seed=7)
    base.update(kw)
    return LabelConfig(**base)


def test_sigkill_resume_is_byte_identical(traces_file, tmp_path):
    ref = tmp_path / "ref"
    run(_cfg(traces_file, ref))
    expected = (ref / "labels.jsonl").read_bytes()
    assert expected.count(b"\n") == 24

    out = tmp_path / "killed"
    args = ["--method", "mc", "--traces", str(traces_file), "--out", str(out), "--k", "2", "--chunk", "2",
            "--seed", "7"]
    env = {**os.environ, "PRMKIT_QUIET": "1", "PRMKIT_LABEL_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from prmkit.cli import main; main()", "label", *args],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    labels = out / "labels.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if labels.exists() and labels.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = labels.read_bytes()
    assert 2 <= partial.count(b"\n") < 24 and expected.startswith(partial[:partial.rfind(b"\n") + 1])
    with open(labels, "ab") as fh:  # a torn write: half a record with no newline
        fh.write(b'{"schema_version": 1, "kind": "tra')
    run(_cfg(traces_file, out))  # the same command again
    assert labels.read_bytes() == expected
    cost = json.loads((out / "cost.json").read_text())
    assert cost["resumed_from"] >= 2 and cost["traces"] == 24


def test_rerun_with_other_options_or_traces_is_refused(traces_file, tmp_path):
    out = tmp_path / "run"
    run(_cfg(traces_file, out, method="verify"))
    with pytest.raises(InputError, match="different options"):
        run(_cfg(traces_file, out, method="verify", seed=8))
    other = read_traces(traces_file)[::-1]
    with pytest.raises(InputError, match="does not match input trace"):
        resume_point(out / "labels.jsonl", other)


def test_ray_backend_equals_local(traces_file, tmp_path):
    pytest.importorskip("ray")
    small = tmp_path / "t20.jsonl"
    write_records(small, read_traces(traces_file)[:20])
    local, remote = tmp_path / "local", tmp_path / "ray"
    run(_cfg(small, local, method="omega", chunk=4))
    t0 = time.time()
    run(_cfg(small, remote, method="omega", chunk=4, backend="ray", workers=2))
    print(f"ray run (incl. startup) {time.time() - t0:.1f} s")
    import ray

    assert not ray.is_initialized()
    assert (remote / "labels.jsonl").read_bytes() == (local / "labels.jsonl").read_bytes()


def test_label_report_cli(traces_file, tmp_path):
    from typer.testing import CliRunner

    from prmkit.cli import _register, app

    few = tmp_path / "t8.jsonl"
    write_records(few, read_traces(traces_file)[:8])
    run(_cfg(few, tmp_path / "v", method="verify"))
    run(_cfg(few, tmp_path / "o", method="omega"))
    _register()
    res = CliRunner().invoke(app, ["label-report", "--labels", str(tmp_path / "v"), "--labels",
                                   str(tmp_path / "o" / "labels.jsonl"), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.stdout
    assert "verify" in res.stdout and "omega" in res.stdout
    rep = json.loads((tmp_path / "rep" / "label_report.json").read_text())
    # expected agreement from the independent gym reference and the report's stated rule
    # (first step labelled < 0.5), not from the gym checker or the report's own code
    from tests import gym_reference as ref

    for method, labels in (("verify", tmp_path / "v" / "labels.jsonl"), ("omega", tmp_path / "o" / "labels.jsonl")):
        rows = read_traces(labels)
        pred = [next((i for i, v in enumerate(t.labels.values) if v is not None and v < 0.5), -1) for t in rows]
        gold = [ref.first_error(t.prompt, t.steps) for t in rows]
        assert rep["methods"][method]["first_error_agreement"] == sum(map(int.__eq__, pred, gold)) / len(rows)
    assert rep["methods"]["verify"]["first_error_agreement"] == 1.0
    assert (tmp_path / "rep" / "label_report.png").stat().st_size > 1000
