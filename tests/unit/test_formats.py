"""Format converters: exact round trips, label mappings checked by hand, and located errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from prmkit.errors import InputError
from prmkit.data import gsm8k_test_path
from prmkit.formats import FORMATS, convert, gsm8k, load_traces, math_shepherd, prm800k, processbench, trl
from prmkit.schema import StepLabels, Trace, read_traces

GSM8K_TEST = gsm8k_test_path()  # vendored in the package (MIT licence beside it)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# TRL stepwise supervision

TRL_BOOL = {"prompt": "Which number is larger, 9.11 or 9.9?",
            "completions": ["The whole parts are equal.", "0.11 > 0.9, so 9.11 is larger."],
            "labels": [True, False]}
TRL_SOFT = {"prompt": "Compute 2 + 3 * 4.",
            "completions": ["3 * 4 = 12.", "2 + 12 = 14.", "The answer is 14."],
            "labels": [0.375, 1.0, 0.0],
            "source": "mc-rollouts"}  # an extra column rides along


@pytest.mark.parametrize("record", [TRL_BOOL, TRL_SOFT], ids=["bool", "soft"])
def test_trl_round_trip_is_identity(record):
    original = copy.deepcopy(record)
    trace = trl.record_to_trace(record)
    back = trl.trace_to_record(trace)
    assert back == original
    assert json.dumps(back) == json.dumps(original)  # same JSON text: bools stay bools, floats floats
    assert [type(v) for v in back["labels"]] == [type(v) for v in original["labels"]]


def test_trl_label_values():
    assert trl.record_to_trace(TRL_BOOL).labels.values == [1.0, 0.0]
    soft = trl.record_to_trace(TRL_SOFT)
    assert soft.labels.values == [0.375, 1.0, 0.0]
    assert soft.steps == ["3 * 4 = 12.", "2 + 12 = 14.", "The answer is 14."]
    assert soft.prompt == "Compute 2 + 3 * 4."


def test_trl_float_labels_that_look_hard_stay_floats():
    record = {"prompt": "p", "completions": ["a", "b"], "labels": [1.0, 0.0]}
    back = trl.trace_to_record(trl.record_to_trace(record))
    assert json.dumps(back["labels"]) == "[1.0, 0.0]"


def test_trl_label_type_for_traces_from_elsewhere():
    hard = Trace("p1", "q", ["a", "b"], labels=StepLabels([1.0, 0.0], method="mc"))
    soft = Trace("p1", "q", ["a", "b"], labels=StepLabels([0.25, 1.0], method="mc"))
    assert trl.trace_to_record(hard)["labels"] == [True, False]
    assert all(type(v) is bool for v in trl.trace_to_record(hard)["labels"])
    assert trl.trace_to_record(hard, label_type="float")["labels"] == [1.0, 0.0]
    assert all(type(v) is float for v in trl.trace_to_record(hard, label_type="float")["labels"])
    assert trl.trace_to_record(soft)["labels"] == [0.25, 1.0]
    with pytest.raises(InputError, match="label_type='bool'"):
        trl.trace_to_record(soft, label_type="bool")
    unknown = Trace("p1", "q", ["a", "b"], labels=StepLabels([1.0, None], method="tool"))
    with pytest.raises(InputError, match=r"labels\.values\[1\]"):
        trl.trace_to_record(unknown)


def test_trl_dataset_feature_types():
    ds = trl.to_trl_dataset([trl.record_to_trace(TRL_BOOL)])
    assert ds.features["prompt"].dtype == "string"
    assert ds.features["completions"].feature.dtype == "string"
    assert ds.features["labels"].feature.dtype == "bool"
    assert ds[0] == TRL_BOOL

    ds = trl.to_trl_dataset([trl.record_to_trace(TRL_BOOL), trl.record_to_trace(TRL_SOFT)])
    assert ds.features["labels"].feature.dtype == "float64"  # one soft row makes the column float
    assert ds[0]["labels"] == [1.0, 0.0]
    assert ds[1]["labels"] == [0.375, 1.0, 0.0]
    assert ds[1]["completions"] == TRL_SOFT["completions"]


def test_trl_bad_labels():
    with pytest.raises(InputError, match="one label per step"):
        trl.record_to_trace({"prompt": "p", "completions": ["a", "b"], "labels": [True]}, line=4)
    with pytest.raises(InputError, match=r"line 4, field 'labels\[1\]'"):
        trl.record_to_trace({"prompt": "p", "completions": ["a", "b"], "labels": [0.5, 1.5]}, line=4)


# ---------------------------------------------------------------------------------------------
# PRM800K (fields as in the openai/prm800k README)


def prm800k_record() -> dict:
    def completion(text, rating, flagged=None):
        return {"text": text, "rating": rating, "flagged": flagged}

    return {
        "labeler": "340d89bc-f5b7-45e9-b272-909ba68ee363",
        "timestamp": "2023-01-22T04:34:27.052924",
        "generation": 9,
        "is_quality_control_question": False,
        "is_initial_screening_question": False,
        "question": {
            "problem": "What is $2^{10}$?",
            "ground_truth_solution": "$2^{10} = \\boxed{1024}$.",
            "ground_truth_answer": "1024",
            "pre_generated_steps": ["I know $2^5 = 32$.", "So $2^{10} = 32^2$.", "$32^2 = 1000$.\n\n# Answer\n\n1000"],
            "pre_generated_answer": "1000",
            "pre_generated_verifier_score": 0.0107,
        },
        "label": {
            "steps": [
                {"completions": [completion("I know $2^5 = 32$.", 1)],
                 "human_completion": None, "chosen_completion": 0},
                {"completions": [completion("So $2^{10} = 32^2$.", 0),  # neutral, chosen
                                 completion("So $2^{10} = 64$.", -1, False)],
                 "human_completion": None, "chosen_completion": 0},
                {"completions": [completion("$32^2 = 1000$.\n\n# Answer\n\n1000", -1)],
                 "human_completion": None, "chosen_completion": None},  # phase 2: labeling stopped here
            ],
            "total_time": 278270,
            "finish_reason": "found_error",
        },
    }


def test_prm800k_round_trip_keeps_neutral_ratings():
    record = prm800k_record()
    for neutral in ("unknown", "positive", "negative"):
        trace = prm800k.record_to_trace(copy.deepcopy(record), neutral=neutral)
        assert prm800k.trace_to_record(trace) == record
    # through the schema's own JSONL too (meta must survive JSON)
    trace = prm800k.record_to_trace(record)
    via_json = Trace(**{**trace.__dict__, "meta": json.loads(json.dumps(trace.meta))})
    assert prm800k.trace_to_record(via_json) == record


def test_prm800k_chosen_path_and_neutral_mapping():
    record = prm800k_record()
    trace = prm800k.record_to_trace(record)
    assert trace.steps == ["I know $2^5 = 32$.", "So $2^{10} = 32^2$.", "$32^2 = 1000$.\n\n# Answer\n\n1000"]
    assert trace.prompt == "What is $2^{10}$?"
    assert trace.labels.ratings == [1, 0, -1]
    assert trace.labels.values == [1.0, None, 0.0]
    assert trace.first_error == 2
    assert trace.final_answer == "1000"
    assert trace.outcome is None  # found_error says nothing about the final answer
    assert prm800k.record_to_trace(record, neutral="positive").labels.values == [1.0, 1.0, 0.0]
    assert prm800k.record_to_trace(record, neutral="negative").labels.values == [1.0, 0.0, 0.0]
    with pytest.raises(InputError, match="neutral"):
        prm800k.record_to_trace(record, neutral="half")


def test_prm800k_human_completion_and_solution():
    record = prm800k_record()
    steps = record["label"]["steps"]
    steps[2] = {"completions": [{"text": "$32^2 = 1000$.", "rating": -1, "flagged": None}],
                "human_completion": {"text": "$32^2 = 1024$.\n\n# Answer\n\n1024", "rating": None},
                "chosen_completion": None}
    record["label"]["finish_reason"] = "solution"
    trace = prm800k.record_to_trace(record, neutral="positive")
    assert trace.steps[2] == "$32^2 = 1024$.\n\n# Answer\n\n1024"
    assert trace.labels.ratings == [1, 0, None]
    assert trace.labels.values == [1.0, 1.0, 1.0]  # README: human steps are written as +1 steps
    assert (trace.first_error, trace.outcome, trace.final_answer) == (-1, 1.0, "1024")
    assert prm800k.trace_to_record(trace) == record


def test_prm800k_edited_trace_is_rebuilt():
    trace = prm800k.record_to_trace(prm800k_record())
    trace.steps[2] = "$32^2 = 1024$."
    trace.labels.ratings[2] = 1
    out = prm800k.trace_to_record(trace)
    assert out["label"]["steps"][2] == {"completions": [{"text": "$32^2 = 1024$.", "rating": 1, "flagged": None}],
                                        "human_completion": None, "chosen_completion": 0}
    assert out["question"]["ground_truth_answer"] == "1024"
    assert prm800k.record_to_trace(out).steps == trace.steps


def test_prm800k_bad_rating_and_index():
    record = prm800k_record()
    record["label"]["steps"][0]["completions"][0]["rating"] = 2
    with pytest.raises(InputError, match=r"line 7, field 'label\.steps\[0\]\.completions\[0\]\.rating'"):
        prm800k.record_to_trace(record, line=7)
    record = prm800k_record()
    record["label"]["steps"][1]["chosen_completion"] = 5
    with pytest.raises(InputError, match="chosen_completion"):
        prm800k.record_to_trace(record)


# ---------------------------------------------------------------------------------------------
# Math-Shepherd

MS_QUESTION = ("Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
               "muffins for her friends every day with four. How many eggs are left?")
MS_STEPS = ["Step 1: Janet's ducks lay 16 eggs per day.",
            "Step 2: She eats three for breakfast, so she has 16 - 3 = <<16-3=13>>13 eggs left.",
            "Step 3: She bakes muffins with four, so she has 13 - 4 = <<13-4=8>>8 eggs left.",
            "Step 4: The answer is: 8"]
MS_RECORD = {
    "input": MS_QUESTION + " " + " ки\n".join(MS_STEPS) + " ки",
    "label": MS_QUESTION + " " + MS_STEPS[0] + " +\n" + MS_STEPS[1] + " +\n" + MS_STEPS[2] + " -\n"
    + MS_STEPS[3] + " -",
    "task": "GSM8K",
}


def test_math_shepherd_parse_and_labels():
    trace = math_shepherd.record_to_trace(MS_RECORD)
    assert trace.prompt == MS_QUESTION
    assert trace.steps == MS_STEPS
    assert trace.labels.values == [1.0, 1.0, 0.0, 0.0]
    assert trace.final_answer == "8"


def test_math_shepherd_round_trip_is_identity():
    assert math_shepherd.trace_to_record(math_shepherd.record_to_trace(MS_RECORD)) == MS_RECORD
    odd = {"input": "Q?  step 1: a ки\n\nstep 2: b  ки \n", "label": "Q?  step 1: a -\n\nstep 2: b  + \n",
           "task": "MATH", "id": 3}
    trace = math_shepherd.record_to_trace(odd)
    assert (trace.prompt, trace.steps, trace.labels.values) == ("Q?", ["step 1: a", "step 2: b"], [0.0, 1.0])
    assert math_shepherd.trace_to_record(trace) == odd


def test_math_shepherd_tag_inside_question_round_trips():
    record = {"input": "What is 1+1? ки Step 1: 1+1=2. The answer is: 2 ки",
              "label": "What is 1+1? - Step 1: 1+1=2. The answer is: 2 +", "task": "GSM8K"}
    trace = math_shepherd.record_to_trace(record)
    assert trace.steps == ["Step 1: 1+1=2. The answer is: 2"]
    assert trace.labels.values == [1.0]
    assert math_shepherd.trace_to_record(trace) == record


def test_math_shepherd_writes_canonical_layout_for_new_traces():
    trace = Trace("x", "Q?", ["Step 1: a", "Step 2: b"], labels=StepLabels([1.0, 0.0], method="mc"))
    assert math_shepherd.trace_to_record(trace, task="MATH") == {
        "input": "Q? Step 1: a ки\nStep 2: b ки", "label": "Q? Step 1: a +\nStep 2: b -", "task": "MATH"}
    soft = Trace("x", "Q?", ["Step 1: a"], labels=StepLabels([0.7], method="mc"))
    with pytest.raises(InputError, match="threshold"):
        math_shepherd.trace_to_record(soft)
    assert math_shepherd.trace_to_record(soft, threshold=0.5)["label"] == "Q? Step 1: a +"


def test_math_shepherd_label_mismatch():
    bad = dict(MS_RECORD, label=MS_RECORD["label"].replace("+", "*", 1))
    with pytest.raises(InputError, match="line 2, field 'label'"):
        math_shepherd.record_to_trace(bad, line=2)


# ---------------------------------------------------------------------------------------------
# ProcessBench

PB_RECORDS = [
    {"id": "gsm8k-0", "generator": "Qwen2-7B-Instruct", "problem": "Sue has 3 flamingos and buys 2 more. How many?",
     "steps": ["Sue starts with 3.", "3 + 2 = 6.", "The answer is 6."], "final_answer_correct": False, "label": 1},
    {"id": "gsm8k-1", "generator": "Llama-3.1-8B-Instruct", "problem": "What is 4 * 5?",
     "steps": ["4 * 5 = 20.", "The answer is 20."], "final_answer_correct": True, "label": -1},
]


def test_processbench_mapping_and_round_trip():
    traces = processbench.records_to_traces(copy.deepcopy(PB_RECORDS))
    assert [(t.problem_id, t.first_error, t.outcome) for t in traces] == [("gsm8k-0", 1, 0.0), ("gsm8k-1", -1, 1.0)]
    assert traces[1].meta["processbench"]["generator"] == "Llama-3.1-8B-Instruct"
    assert processbench.traces_to_records(traces) == PB_RECORDS


def test_processbench_json_array_and_jsonl(tmp_path):
    array = tmp_path / "gsm8k.json"
    array.write_text(json.dumps(PB_RECORDS, indent=2), encoding="utf-8")
    jsonl = write_jsonl(tmp_path / "gsm8k.jsonl", PB_RECORDS)
    assert load_traces(array, "processbench") == load_traces(jsonl, "processbench")
    assert convert(array, "processbench", tmp_path / "out.jsonl", "processbench") == 2
    assert [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()] == PB_RECORDS
    convert(jsonl, "processbench", tmp_path / "out.json", "processbench")  # .json: written as an array
    assert json.loads((tmp_path / "out.json").read_text()) == PB_RECORDS


def test_processbench_label_out_of_range():
    with pytest.raises(InputError, match="line 3, field 'label'"):
        processbench.record_to_trace(dict(PB_RECORDS[1], label=2), line=3)


# ---------------------------------------------------------------------------------------------
# GSM8K: every line of the real test split


def test_gsm8k_every_test_line():
    from prmkit.tasks import get_grader

    records = [json.loads(line) for line in GSM8K_TEST.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(records) == 1319  # the full GSM8K test split
    assert records
    grader = get_grader("gsm8k")
    traces = gsm8k.records_to_traces(copy.deepcopy(records))
    for i, (record, trace) in enumerate(zip(records, traces)):
        head, _, final = record["answer"].partition("\n####")  # counted independently of the converter
        expected_steps = sum(1 for line in head.split("\n") if line.strip()) + 1  # + the "#### N" line
        assert trace.num_steps == expected_steps, i
        assert trace.final_answer == final.strip(), i
        assert trace.steps[-1] == "####" + final, i  # the answer line is the last step, as sampled traces keep it
        assert trace.problem_id == f"gsm8k-{i}"
        assert gsm8k.trace_to_record(trace) == record, i
        assert grader.is_correct(trace.final_answer, trace.final_answer), i
    assert traces[0].steps == ["Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.",
                               "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer\u2019s market.",
                               "#### 18"]
    assert (traces[0].final_answer, traces[0].outcome, traces[0].first_error) == ("18", 1.0, None)


def test_gsm8k_blank_lines_and_missing_final():
    record = {"question": "q", "answer": "a = <<1+1=2>>2\n\nb\n#### 2"}
    trace = gsm8k.record_to_trace(record)
    assert trace.steps == ["a = <<1+1=2>>2", "b", "#### 2"]
    assert gsm8k.trace_to_record(trace) == record
    with pytest.raises(InputError, match="line 9, field 'answer'"):
        gsm8k.record_to_trace({"question": "q", "answer": "a\nb"}, line=9)


# ---------------------------------------------------------------------------------------------
# files: located errors, atomic writes, option routing

MISSING_FIELD = [
    ("trl", TRL_BOOL, "labels"),
    ("prm800k", prm800k_record(), "question"),
    ("math_shepherd", MS_RECORD, "label"),
    ("processbench", PB_RECORDS[0], "final_answer_correct"),
    ("gsm8k", {"question": "q", "answer": "a\n#### 1"}, "answer"),
]


@pytest.mark.parametrize("fmt,good,missing", MISSING_FIELD, ids=[m[0] for m in MISSING_FIELD])
def test_missing_field_names_line_and_field(tmp_path, fmt, good, missing):
    bad = {k: v for k, v in good.items() if k != missing}
    src = write_jsonl(tmp_path / "in.jsonl", [good, bad])
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError) as info:
        convert(src, fmt, out, "prmkit")
    message = str(info.value)
    assert "in.jsonl" in message and "line 2" in message and f"'{missing}'" in message
    assert info.value.line == 2 and info.value.field == missing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # nothing (partial) written


def test_convert_prm800k_to_trl_neutral_option(tmp_path):
    src = write_jsonl(tmp_path / "prm.jsonl", [prm800k_record()])
    out = tmp_path / "trl.jsonl"
    with pytest.raises(InputError, match=r"line 1, field 'labels\.values\[1\]'"):
        convert(src, "prm800k", out, "trl")  # neutral -> unknown, which TRL cannot hold
    assert not out.exists()
    convert(src, "prm800k", out, "trl", neutral="positive")
    row = json.loads(out.read_text())
    assert row["labels"] == [True, True, False]
    assert row["completions"][1] == "So $2^{10} = 32^2$."
    with pytest.raises(InputError, match="unknown option"):
        convert(src, "prm800k", out, "trl", nuetral="positive")


def test_convert_through_prmkit_traces(tmp_path):
    src = write_jsonl(tmp_path / "ms.jsonl", [MS_RECORD])
    convert(src, "math_shepherd", tmp_path / "traces.jsonl", "prmkit")
    assert read_traces(tmp_path / "traces.jsonl")[0].labels.values == [1.0, 1.0, 0.0, 0.0]
    convert(tmp_path / "traces.jsonl", "prmkit", tmp_path / "back.jsonl", "math_shepherd")
    assert json.loads((tmp_path / "back.jsonl").read_text()) == MS_RECORD
    assert set(FORMATS) == {"prmkit", "trl", "prm800k", "math_shepherd", "processbench", "gsm8k"}
