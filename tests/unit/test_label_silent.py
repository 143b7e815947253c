"""Labelling says why traces went unlabelled, and label-report says what its reference is: gold,
another label file (`--reference`), or nothing."""

from __future__ import annotations

import json

import pytest

from prmkit.label.report import LabelReportConfig, no_gold_note, with_reference
from prmkit.label.report import run as report_run
from prmkit.label.run import LabelConfig, dropped_line
from prmkit.schema import StepLabels, Trace, write_records


def test_dropped_line_by_hand():
    line = dropped_line({"mc_never_zero": 1, "low_self_confidence": 3}, LabelConfig(min_self_conf=0.6))
    assert line.startswith("4 traces unlabelled: 3 low_self_confidence (")      # most frequent first
    assert "below --min-self-conf 0.6" in line and line.index("low_self") < line.index("1 mc_never_zero (")
    assert "odd_reason (see meta.label)" in dropped_line({"odd_reason": 2}, LabelConfig())


def test_scan_run_prints_why_nothing_was_labelled(tmp_path, capsys):
    from prmkit.gym.task import make_split, make_trace
    from prmkit.label.run import run

    wrong = [make_trace(p, "1+1=2\nA:-5") for p in make_split("test", 2) for _ in range(4)]
    assert all(t.outcome == 0.0 for t in wrong)          # self-confidence 0 < 0.75: SCAN drops them all
    path = tmp_path / "traces.jsonl"
    write_records(path, wrong)
    run(LabelConfig(method="scan", traces=str(path), out=str(tmp_path / "scan"), k=2))
    out = capsys.readouterr().out
    assert "labelled 0/8" in out
    assert "8 traces unlabelled: 8 low_self_confidence (its question's self-confidence" in out
    cost = json.loads((tmp_path / "scan" / "cost.json").read_text())
    assert cost["dropped"] == {"low_self_confidence": 8}


def _t(pid, steps, values, method, first_error=None):
    return Trace(problem_id=pid, prompt=f"Q {pid}\n", steps=steps, first_error=first_error,
                 labels=None if values is None else StepLabels(values=values, method=method))


def test_with_reference_by_hand():
    ref = [_t("a", ["x", "y", "z"], [1.0, 1.0, 0.0], "verify"), _t("b", ["u", "v"], [1.0, 1.0], "verify"),
           _t("c", ["w"], None, "verify")]
    got = with_reference([_t("b", ["u", "v"], [0.2, 1.0], "mc"), _t("a", ["x", "y", "z"], [1.0, 0.0, 0.0], "mc"),
                          _t("c", ["w"], [1.0], "mc"), _t("d", ["q"], [1.0], "mc")], ref)
    assert [t.first_error for t in got] == [-1, 2, None, None]   # c: reference unlabelled; d: not in it


def test_label_report_without_gold_says_so_and_uses_a_reference(tmp_path, capsys):
    mc = [_t("a", ["x", "y", "z"], [1.0, 0.0, 0.0], "mc"), _t("b", ["u", "v"], [1.0, 1.0], "mc")]
    verify = [_t("a", ["x", "y", "z"], [1.0, 1.0, 0.0], "verify"), _t("b", ["u", "v"], [1.0, 1.0], "verify")]
    write_records(tmp_path / "mc.jsonl", mc)
    (tmp_path / "v").mkdir()
    write_records(tmp_path / "v" / "labels.jsonl", verify)

    res = report_run(LabelReportConfig(labels=[str(tmp_path / "mc.jsonl")], out=str(tmp_path / "r0")))
    out = capsys.readouterr().out
    assert "reference: gold first errors" in out
    assert "no reference first errors for mc" in out and "--reference" in out and "nan" not in out
    assert no_gold_note(res["methods"]) is not None

    res = report_run(LabelReportConfig(labels=[str(tmp_path / "mc.jsonl")], out=str(tmp_path / "r1"),
                                       reference=str(tmp_path / "v")))
    out = capsys.readouterr().out
    assert "reference: first errors predicted by" in out and "(verify labels" in out
    assert "no reference first errors" not in out
    m = res["methods"]["mc"]
    # a: mc says 1, verify 2 -> disagree; b: both -1 -> agree. Bad steps (gold a: index 2; b: none):
    # mc flags a1, a2 -> tp 1 (a2), fp 1 (a1), fn 0
    assert (m["with_gold"], m["first_error_agreement"], m["bad_precision"], m["bad_recall"]) == (2, 0.5, 0.5, 1.0)
    saved = json.loads((tmp_path / "r1" / "label_report.json").read_text())
    assert "verify labels" in saved["reference"]


def _user_traces(tmp_path):
    traces = [Trace(problem_id="u1", prompt="Natalia sold clips to 48 friends. How many?\n",
                    steps=["She sold 48.", "The answer is 48."], outcome=1.0, meta={"task": "math"})]
    path = tmp_path / "user.jsonl"
    write_records(path, traces)
    return path


@pytest.mark.parametrize("extra", [{}, {"judge": "lm"}], ids=["rule", "lm-without-model"])
def test_judge_defaults_from_the_gym_refuse_user_traces_before_any_model_loads(tmp_path, monkeypatch, extra):
    from prmkit.errors import InputError
    from prmkit.label import worker
    from prmkit.label.run import run

    def boom(*a, **k):
        raise AssertionError("a model loaded before the judge was checked")

    monkeypatch.setattr(worker.Worker, "_load_judge", boom)
    out = tmp_path / "judge"
    with pytest.raises(InputError) as e:
        run(LabelConfig(method="judge", traces=str(_user_traces(tmp_path)), out=str(out), **extra))
    assert e.value.field in ("judge", "judge_model") and "--judge-model" in str(e.value)
    assert not out.exists()


def test_judge_rule_on_gym_traces_says_it_is_the_gym_checker(tmp_path, capsys):
    from prmkit.gym.task import make_split, make_trace
    from prmkit.label.run import run

    path = tmp_path / "gym.jsonl"
    write_records(path, [make_trace(p, "1+1=2\nA:-5") for p in make_split("test", 2)])
    run(LabelConfig(method="judge", traces=str(path), out=str(tmp_path / "j")))
    err = capsys.readouterr().err
    assert "note: judge: the gym's rule checker, wrong with probability 0.1" in err
