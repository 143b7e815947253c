"""`prmkit train prm|orm|implicit`, `score`, `eval processbench|bon` and `report` on the shipped gym
policy with a few traces, in seconds; bad input names the file, line and field."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from prmkit.cli import _register, app
from prmkit.gym.task import make_split, make_trace, parse_prompt
from prmkit.schema import StepLabels, write_records

_register()
runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Gym traces (right and corrupted), two per problem, with step labels (test data only)."""
    d = tmp_path_factory.mktemp("rmdata")
    rng = random.Random(0)
    traces = []
    for p in make_split("dev", 8):
        sol = parse_prompt(p.prompt).solution_steps()
        bad = list(sol)
        k = rng.randrange(len(bad) - 1)
        bad[k] = bad[k][:-1] + str((int(bad[k][-1]) + 1) % 10)
        bad[-1] = "A:" + str(int(bad[-1][2:]) + 1)           # a wrong step and a wrong answer
        for steps in (sol, bad):
            t = make_trace(p, "\n".join(steps))
            fe = t.first_error
            labels = [1.0 if fe == -1 or i < fe else 0.0 for i in range(len(steps))]
            traces.append(replace(t, labels=StepLabels(values=labels, method="test")))
    write_records(d / "traces.jsonl", traces)
    return d


COMMON = ("--epochs", "1", "--batch-size", "8", "--threads", "1", "--fit-split", "")


def test_train_score_eval_report(data, tmp_path):
    f = str(data / "traces.jsonl")
    prm, orm, imp = tmp_path / "prm", tmp_path / "orm", tmp_path / "imp"
    invoke("train", "prm", "--data", f, "--fit-data", f, "--out", str(prm), *COMMON[:-2])
    cfg = json.loads((prm / "prmkit_rm.json").read_text())
    assert cfg["kind"] == "prm" and cfg["readout"]["name"] == "trl" and isinstance(cfg["threshold"], float)
    assert cfg["meta"]["threshold_fit"]["traces"] == 16
    assert (prm / "train_log.jsonl").exists() and list((prm / "tb").iterdir())
    invoke("train", "orm", "--data", f, "--out", str(orm), *COMMON)
    assert json.loads((orm / "prmkit_rm.json").read_text())["aggregation"] == "last"
    invoke("train", "implicit", "--data", f, "--out", str(imp), "--loss", "dpo", *COMMON)
    assert json.loads((imp / "prmkit_rm.json").read_text())["ref_model"] == "gym-policy"
    assert (imp / "ref_logprobs.pt").exists()

    out = invoke("score", "--traces", f, "--model", str(prm), "--out", str(tmp_path / "s"))
    assert "scored 16 traces" in out
    rows = [json.loads(line) for line in (tmp_path / "s" / "scored.jsonl").read_text().splitlines()]
    assert all(len(r["meta"]["rm"]["step_scores"]) == len(r["steps"]) for r in rows)

    ev = tmp_path / "eval"
    invoke("eval", "processbench", "--data", f, "--model", str(prm), "--out", str(ev / "pb"))
    res = json.loads((ev / "pb" / "processbench.json").read_text())
    assert {"f1", "acc_error", "acc_correct", "step_auroc", "step_ece", "min_on_last_share"} <= set(res)
    assert res["threshold_source"] == "stored with the model"
    invoke("eval", "bon", "--data", f, "--models", f"{prm},{orm},{imp}", "--n", "2", "--resamples", "5",
           "--out", str(ev / "bon"))
    bon = json.loads((ev / "bon" / "bon.json").read_text())
    assert bon["ns"] == [1, 2] and len(bon["models"]) == 3
    assert "attack_probes" in next(iter(bon["models"].values()))
    invoke("report", "--run-dir", str(ev))
    html = (ev / "report.html").read_text()
    assert html.count("<img") >= 4 and "Best-of-N" in html


def test_bad_input_names_file_line_and_field(data, tmp_path):
    rows = (data / "traces.jsonl").read_text().splitlines()
    broken = json.loads(rows[1])
    broken["labels"] = None
    f = tmp_path / "nolabels.jsonl"
    f.write_text(rows[0] + "\n" + json.dumps(broken) + "\n")
    result = runner.invoke(app, ["train", "prm", "--data", str(f), "--out", str(tmp_path / "x"), *COMMON])
    assert result.exit_code != 0
    assert "line 2" in str(result.exception) and "labels" in str(result.exception)
