"""The data model: JSONL and datasets round trips; bad input names file, line and field."""

from __future__ import annotations

import json

import pytest

from prmkit.errors import InputError
from prmkit.schema import (Problem, StepLabels, Trace, from_dataset, read_problems, read_traces, to_dataset,
                           write_records)


def _trace(**kw):
    base = dict(problem_id="p1", prompt="Q:1,+2\n", steps=["1+2=3", "A:3"], final_answer="3", outcome=1.0,
                first_error=-1, labels=StepLabels(values=[0.375, None], method="mc_soft", rollouts=16))
    base.update(kw)
    return Trace(**base)


def test_jsonl_round_trip(tmp_path):
    traces = [_trace(), _trace(problem_id="p2", labels=None, outcome=None, first_error=None)]
    path = tmp_path / "t.jsonl"
    write_records(path, traces)
    assert read_traces(path) == traces
    row = json.loads(path.read_text().splitlines()[0])
    assert row["schema_version"] == 1 and row["labels"]["values"] == [0.375, None]


def test_datasets_round_trip():
    traces = [_trace(), _trace(problem_id="p2", labels=None, final_answer="15", meta={"k": [1, 2]})]
    ds = to_dataset(traces)
    assert len(ds) == 2
    assert from_dataset(ds, Trace) == traces
    probs = [Problem(id="a", prompt="Q", answer="3", meta={"x": 1})]
    assert from_dataset(to_dataset(probs), Problem) == probs


def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"problem_id": "p", "prompt": "q", "steps": ["a"]})
    _write_lines(path, [good, "{not json"])
    with pytest.raises(InputError) as e:
        read_traces(path)
    assert str(path) in str(e.value) and "line 2" in str(e.value) and "malformed JSON" in str(e.value)


def test_missing_field_names_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    _write_lines(path, [json.dumps({"problem_id": "p", "steps": ["a"]})])
    with pytest.raises(InputError) as e:
        read_traces(path)
    assert "line 1" in str(e.value) and "'prompt'" in str(e.value) and str(path) in str(e.value)


def test_empty_steps_and_label_range(tmp_path):
    path = tmp_path / "bad.jsonl"
    _write_lines(path, [json.dumps({"problem_id": "p", "prompt": "q", "steps": ["a"]}),
                        json.dumps({"problem_id": "p", "prompt": "q", "steps": []})])
    with pytest.raises(InputError, match=r"line 2.*'steps'"):
        read_traces(path)
    _write_lines(path, [json.dumps({"problem_id": "p", "prompt": "q", "steps": ["a", "b"],
                                    "labels": {"values": [1.0, 1.5], "method": "x"}})])
    with pytest.raises(InputError, match=r"line 1.*labels\.values\[1\]"):
        read_traces(path)


def test_failed_write_leaves_no_file(tmp_path):
    out = tmp_path / "out.jsonl"
    bad = _trace(labels=StepLabels(values=[0.5, -0.1], method="x"))
    with pytest.raises(InputError, match=r"line 2.*labels\.values\[1\]"):
        write_records(out, [_trace(), bad])
    assert list(tmp_path.iterdir()) == []


def test_problems_io(tmp_path):
    ps = [Problem(id="g1", prompt="Q:1,+1\n", answer="2")]
    write_records(tmp_path / "p.jsonl", ps)
    assert read_problems(tmp_path / "p.jsonl") == ps
