"""Converters on lines in the real formats (fixtures in tests/fixtures, see its README).

References here are computed independently of the converters: the labeler's path and its -1 step
read straight off the record, TRL's PRM800K mapping (huggingface/trl examples/datasets/prm800k.py)
re-implemented, GSM8K answers parsed with a regex, MATH boxes matched by a separate brace counter.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from prmkit.convert import ConvertConfig, run as convert_cli
from prmkit.data import gsm8k_test_path
from prmkit.errors import InputError
from prmkit.formats import convert, gsm8k, load_traces, prm800k, processbench, trl
from prmkit.schema import StepLabels, Trace, dumps_strict_json, read_problems, read_traces, write_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PHASE1 = FIXTURES / "prm800k" / "phase1.jsonl"
PHASE2 = FIXTURES / "prm800k" / "phase2.jsonl"
MATH = FIXTURES / "math" / "hendrycks.jsonl"
PB = FIXTURES / "processbench" / "mixed.json"


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cli(tmp_path, **kw) -> Path:
    out = tmp_path / kw.pop("out_name", "out.jsonl")
    convert_cli(ConvertConfig(output=str(out), **kw))
    return out


# ---------------------------------------------------------------------------------------------
# PRM800K: the labeler's path, read off the record by hand


def labeler_path(record: dict) -> tuple[list[str], list[int | None]]:
    """Texts and ratings along the labeler's path: chosen or human completions; the step with
    neither contributes its pre-generated completion (phase 2) and ends the path."""
    texts, ratings = [], []
    pre = record["question"].get("pre_generated_steps") or []
    for i, step in enumerate(record["label"]["steps"]):
        if step["chosen_completion"] is not None:
            picked = step["completions"][step["chosen_completion"]]
            texts.append(picked["text"])
            ratings.append(picked["rating"])
            continue
        if step["human_completion"] is not None:
            texts.append(step["human_completion"]["text"])
            ratings.append(None)
            continue
        candidates = [c for c in step["completions"] or [] if i < len(pre) and c["text"] == pre[i]]
        if not candidates and len(step["completions"] or []) == 1:
            candidates = step["completions"]
        for c in candidates[:1]:
            texts.append(c["text"])
            ratings.append(c["rating"])
        break
    return texts, ratings


def test_phase2_found_error_ends_at_the_pre_generated_minus_one_step():
    records = lines_of(PHASE2)
    found = [r for r in records if r["label"]["finish_reason"] == "found_error"]
    assert len(found) == 4
    for n, record in enumerate(found):
        stop = next(i for i, s in enumerate(record["label"]["steps"]) if s["chosen_completion"] is None)
        pre = record["question"]["pre_generated_steps"]
        assert record["label"]["steps"][stop]["completions"][0]["text"] == pre[stop]  # the fixture is real-shaped
        trace = prm800k.record_to_trace(copy.deepcopy(record), line=n + 1)
        assert trace.first_error == stop
        assert trace.steps == pre[:stop + 1]  # the labeler's path is the pre-generated solution up to the error
        assert trace.labels.ratings[stop] == -1 and trace.labels.values[stop] == 0.0
        assert trace.meta["prm800k"]["finish_reason"] == "found_error"


def test_phase2_lines_by_hand():
    records = lines_of(PHASE2)
    t = prm800k.record_to_trace(records[0])
    assert t.steps == ["I want to find $3^4 - 2^5$.", "I know $3^4 = 81$.", "And $2^5 = 16$."]
    assert (t.labels.ratings, t.labels.values, t.first_error) == ([0, 1, -1], [None, 1.0, 0.0], 2)
    assert t.outcome is None and t.final_answer is None
    t = prm800k.record_to_trace(records[1])  # error at the very first step
    assert (t.steps, t.first_error, t.labels.ratings) == (["The area is $\\pi r^2 = 2\\pi$."], 0, [-1])
    t = prm800k.record_to_trace(records[2])  # solution
    assert (t.first_error, t.outcome, t.final_answer, t.labels.ratings) == (-1, 1.0, "13", [1, 1])
    t = prm800k.record_to_trace(records[4])  # four alternatives after the pre-generated -1 step
    assert t.first_error == 3 and t.steps[3] == "So $x = 3$.\n\n# Answer\n\n3" and t.final_answer == "3"
    t = prm800k.record_to_trace(records[5])  # give_up, then a step with completions: null
    assert (t.steps, t.first_error, t.meta["prm800k"]["finish_reason"]) == (["The smallest prime is $2$."], None,
                                                                             "give_up")


def test_phase2_error_step_whose_text_differs_from_the_pre_generated_one():
    record = lines_of(PHASE2)[4]
    record["question"]["pre_generated_steps"][3] += " "  # e.g. whitespace lost on one side
    t = prm800k.record_to_trace(record)
    assert t.first_error == 3 and t.steps[3] == record["label"]["steps"][3]["completions"][0]["text"]


def test_prm800k_problems(tmp_path):
    records = lines_of(PHASE2)
    src = tmp_path / "p2.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records + records[:1]))  # one problem twice
    problems = read_problems(cli(tmp_path, input=str(src), source="prm800k", target="problems"))
    assert [(p.prompt, p.answer, p.task) for p in problems] == [
        (r["question"]["problem"], r["question"]["ground_truth_answer"], "math") for r in records]
    traces = prm800k.records_to_traces(records)
    assert [p.id for p in problems] == [t.problem_id for t in traces]  # problems and traces share ids


def test_phase1_lines_by_hand():
    records = lines_of(PHASE1)
    t = prm800k.record_to_trace(records[0])  # a human step where both completions were rated -1
    assert t.steps == ["The first $5$ positive odd integers are $1, 3, 5, 7, 9$.",
                       "Their sum is $1 + 3 + 5 + 7 + 9 = 25$.", "# Answer\n\n25"]
    assert (t.labels.ratings, t.labels.values) == ([1, None, 1], [1.0, 1.0, 1.0])
    assert (t.first_error, t.outcome, t.final_answer) == (-1, 1.0, "25")
    t = prm800k.record_to_trace(records[1])  # give_up: a last step with two completions, none chosen
    assert (len(t.steps), t.first_error, t.outcome) == (2, None, None)
    t = prm800k.record_to_trace(records[2], neutral="negative")  # bad_problem
    assert (t.labels.ratings, t.labels.values, t.first_error) == ([0], [0.0], None)
    t = prm800k.record_to_trace(records[3])  # completions: null ends the path, no exception
    assert t.steps == ["$\\dbinom{5}{2} = \\frac{5 \\cdot 4}{2}$."] and t.first_error is None


@pytest.mark.parametrize("path", [PHASE1, PHASE2], ids=["phase1", "phase2"])
def test_convert_prm800k_to_prmkit_results_contract(tmp_path, path):
    """One trace per line; first_error = the labeler's -1 step (-1 for a finished solution, else null);
    every step's rating in labels.ratings. Through the CLI with its documented target name."""
    out = cli(tmp_path, input=str(path), source="prm800k", target="internal")
    traces = read_traces(out)
    records = lines_of(path)
    assert len(traces) == len(records)
    for record, trace in zip(records, traces):
        texts, ratings = labeler_path(record)
        expected = (ratings.index(-1) if -1 in ratings else
                    -1 if record["label"]["finish_reason"] == "solution" else None)
        assert (trace.steps, trace.labels.ratings, trace.first_error) == (texts, ratings, expected)
    # the default target is the same file
    assert read_traces(cli(tmp_path, input=str(path), source="prm800k", out_name="d.jsonl")) == traces


def test_line_with_an_empty_labeled_path(tmp_path, capsys):
    """A line whose first step ends the path (completions null, or several and none chosen) has no
    Trace (a Trace needs a step): an error naming the line, or left out and counted when asked."""
    records = lines_of(PHASE2)
    empty = copy.deepcopy(records[5])
    empty["label"]["steps"] = [{"completions": None, "human_completion": None, "chosen_completion": None}]
    src = tmp_path / "p2.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records[:2] + [empty] + records[2:]))
    with pytest.raises(InputError, match=r"p2.jsonl.*line 3.*label\.steps.*--skip-empty-paths"):
        cli(tmp_path, input=str(src), source="prm800k")
    out = cli(tmp_path, input=str(src), source="prm800k", skip_empty_paths=True)
    assert [t.prompt for t in read_traces(out)] == [r["question"]["problem"] for r in records]
    assert "skipped 1 lines" in capsys.readouterr().out
    assert len(prm800k.trl_rows(empty, neutral="negative")) == 1  # TRL's script writes one empty row for it


@pytest.mark.parametrize("path", [PHASE1, PHASE2], ids=["phase1", "phase2"])
def test_prm800k_round_trip_through_prmkit_jsonl(tmp_path, path):
    traces_file = cli(tmp_path, input=str(path), source="prm800k", target="prmkit", out_name="t.jsonl")
    back = cli(tmp_path, input=str(traces_file), source="prmkit", target="prm800k", out_name="back.jsonl")
    assert lines_of(back) == lines_of(path)


# ---------------------------------------------------------------------------------------------
# TRL's own PRM800K mapping, re-implemented (huggingface/trl examples/datasets/prm800k.py)


def trl_reference(record: dict, zero_is_good: bool = False) -> list[dict]:
    """Rows as TRL's script makes them: each non-chosen completion of a step is a terminal row
    (prefix + it); the chosen (or human, labelled True) completion extends the prefix; a step
    with no chosen and no human completion (or with nothing at all) stops; the prefix is the last row."""
    def ok(rating):
        return rating == 1 or (zero_is_good and rating == 0)

    prompt = record["question"]["problem"]
    prefix: list[tuple[str, bool]] = []
    out = []
    for step in record["label"]["steps"]:
        comps, chosen, human = step["completions"], step["chosen_completion"], step["human_completion"]
        if comps is None and chosen is None and human is None:
            break
        others = [c for k, c in enumerate(comps) if k != chosen]
        out += [{"prompt": prompt, "completions": [t for t, _ in prefix] + [c["text"]],
                 "labels": [g for _, g in prefix] + [ok(c["rating"])]} for c in others]
        if chosen is None and human is None:
            break
        prefix.append((comps[chosen]["text"], ok(comps[chosen]["rating"])) if chosen is not None
                      else (human["text"], True))
    out.append({"prompt": prompt, "completions": [t for t, _ in prefix], "labels": [g for _, g in prefix]})
    return out


@pytest.mark.parametrize("neutral", ["negative", "positive"])
def test_trl_export_equals_trls_mapping_row_for_row(tmp_path, neutral, capsys):
    records = lines_of(PHASE1) + lines_of(PHASE2)
    src = tmp_path / "all.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = cli(tmp_path, input=str(src), source="prm800k", target="trl", rows="alternatives", neutral=neutral)
    expected = [row for r in records for row in trl_reference(r, zero_is_good=neutral == "positive")]
    assert lines_of(out) == expected
    # counted by hand from the fixtures (non-chosen completions + 1 path row per line):
    # phase 1: (2+2+1)+1, (1+2)+1, 0+1, 1+1; phase 2: 4+1, 3+1 (empty path), 0+1, 1+1 (empty path), 5+1, 0+1
    assert [len(trl_reference(r)) for r in records] == [6, 4, 1, 2, 5, 4, 1, 2, 6, 1]
    assert sum(1 for row in expected if not row["completions"]) == 2  # TRL writes empty path rows too
    printed = capsys.readouterr().out
    assert "32 TRL rows" in printed and "2 path rows have no steps" in printed  # said, not silent


def test_trl_export_keeps_the_minus_one_step_as_a_terminal_row():
    record = lines_of(PHASE2)[0]
    rows = prm800k.trl_rows(record, neutral="negative")
    pre = record["question"]["pre_generated_steps"]
    assert rows[0] == {"prompt": "Compute $3^4 - 2^5$.", "completions": pre[:3], "labels": [False, True, False]}
    assert rows[1]["completions"][-1] == "And $2^5 = 32$." and rows[1]["labels"] == [False, True, True]
    assert rows[-1] == {"prompt": "Compute $3^4 - 2^5$.", "completions": pre[:2], "labels": [False, True]}
    with pytest.raises(InputError, match="neutral='negative'"):
        prm800k.trl_rows(record)  # the 0-rating mapping is an explicit choice


# ---------------------------------------------------------------------------------------------
# CLI bugs: target names, prm800k from elsewhere, processbench -> trl, strict JSON, output == input


def gym_traces() -> list[Trace]:
    return [Trace("gym-0", "Q:7,+3\n", ["7+3=10", "A:10"], final_answer="10", outcome=1.0, first_error=-1,
                  labels=StepLabels([1.0, 1.0], method="verify")),
            Trace("gym-1", "Q:2,*3,-1\n", ["2*3=6", "6-1=4", "A:4"], final_answer="4", outcome=0.0, first_error=1,
                  labels=StepLabels([1.0, 0.0, 0.0], method="verify"))]


def test_prmkit_to_prm800k_and_trl_and_back(tmp_path):
    src = tmp_path / "traces.jsonl"
    write_records(src, gym_traces())
    p8 = cli(tmp_path, input=str(src), source="prmkit", target="prm800k", out_name="p8.jsonl")
    back = read_traces(cli(tmp_path, input=str(p8), source="prm800k", target="prmkit", out_name="b.jsonl"))
    for a, b in zip(gym_traces(), back):  # lossless where PRM800K has the field: text, hard labels, first error
        assert (b.prompt, b.steps, b.labels.values, b.first_error) == (a.prompt, a.steps, a.labels.values,
                                                                       a.first_error)
    t = cli(tmp_path, input=str(src), source="prmkit", target="trl", out_name="trl.jsonl")
    again = read_traces(cli(tmp_path, input=str(t), source="trl", target="prmkit", out_name="again.jsonl"))
    t2 = cli(tmp_path, input=str(tmp_path / "again.jsonl"), source="prmkit", target="trl", out_name="trl2.jsonl")
    assert t2.read_text() == t.read_text()
    assert [x.labels.values for x in again] == [[1.0, 1.0], [1.0, 0.0, 0.0]]


def test_processbench_to_trl_uses_the_gold_labels(tmp_path):
    records = json.loads(PB.read_text())
    out = cli(tmp_path, input=str(PB), source="processbench", target="trl")
    rows = lines_of(out)
    for record, row in zip(records, rows):
        k = record["label"]
        n = len(record["steps"]) if k == -1 else k + 1  # rows end at the first wrong step
        assert row["completions"] == record["steps"][:n]
        assert row["labels"] == ([True] * n if k == -1 else [True] * k + [False])
    trace = processbench.record_to_trace(records[5])  # label 1 of 3 steps: the last one is unknown
    assert trace.labels.values == [1.0, 0.0, None]
    with pytest.raises(InputError, match="unknown"):
        cli(tmp_path, input=str(PB), source="processbench", target="trl", trailing_unknown="refuse", out_name="r.jsonl")
    back = cli(tmp_path, input=str(cli(tmp_path, input=str(PB), source="processbench", out_name="t.jsonl")),
               source="prmkit", target="processbench", out_name="pb.json")
    assert json.loads(back.read_text()) == records  # processbench -> prmkit -> processbench is the identity


def test_step_labels_to_processbench(tmp_path):
    """TRL-style hard labels decide ProcessBench's label (first 0 after 1s; all 1s: -1); soft or unknown
    labels before any 0 do not."""
    def labelled(values):
        return Trace("p", "q", [f"s{i}" for i in range(len(values))], outcome=0.0,
                     labels=StepLabels(values, method="trl"))

    assert [processbench.trace_to_record(labelled(v))["label"] for v in
            ([1.0, 0.0, None], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0, 1.0])] == [1, -1, 0, 1]
    for v in ([1.0, 0.5, 0.0], [None, 0.0]):
        with pytest.raises(InputError, match="first wrong step"):
            processbench.trace_to_record(labelled(v))


def test_strict_json_has_no_bare_nan():
    res = {"f1": float("nan"), "auroc": [0.5, float("inf")], "n": 2, "nested": {"x": float("-inf")}}
    text = dumps_strict_json(res)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"f1": None, "auroc": [0.5, None], "n": 2, "nested": {"x": None}}


def test_eval_processbench_writes_strict_json(tmp_path):
    """All traces correct: no erroneous trace, so acc_error/F1/AUROC are NaN in memory, null on disk."""
    from prmkit.rewards import SHIPPED_PRM_DIR

    data = tmp_path / "pb.json"
    data.write_text(json.dumps([{"id": f"gsm8k-{i}", "generator": "g", "problem": p, "steps": s,
                                 "final_answer_correct": True, "label": -1}
                                for i, (p, s) in enumerate([("Q:7,+3\n", ["7+3=10", "A:10"]),
                                                            ("Q:2,*3\n", ["2*3=6", "A:6"])])]))
    from prmkit.evaluate.processbench import EvalProcessBenchConfig, run as eval_processbench

    res = eval_processbench(EvalProcessBenchConfig(out=str(tmp_path / "run"), model=str(SHIPPED_PRM_DIR),
                                                   data=str(data), threshold=0.5, batch_size=2))
    assert res["step_auroc"] != res["step_auroc"]  # NaN in memory: no wrong step to rank
    text = (tmp_path / "run" / "processbench.json").read_text()
    res = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert res["step_auroc"] is None and res["f1"] is None and res["acc_correct"] is not None


def test_output_equal_to_input_is_refused(tmp_path):
    src = tmp_path / "traces.jsonl"
    write_records(src, gym_traces())
    before = src.read_bytes()
    (tmp_path / "sub").mkdir()
    os.symlink(src, tmp_path / "link.jsonl")
    for out in (src, tmp_path / "sub" / ".." / "traces.jsonl", tmp_path / "link.jsonl"):
        with pytest.raises(InputError, match="output is the input"):
            convert_cli(ConvertConfig(input=str(src), source="prmkit", output=str(out), target="trl"))
        with pytest.raises(InputError, match="output is the input"):
            convert(src, "prmkit", out, "trl")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        with pytest.raises(InputError, match="output is the input"):
            convert_cli(ConvertConfig(input="traces.jsonl", source="prmkit", output=str(src), target="problems"))
    finally:
        os.chdir(cwd)
    assert src.read_bytes() == before


def test_empty_input_is_an_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    for target in ("trl", "problems"):
        with pytest.raises(InputError, match=r"empty.jsonl.*no records"):
            convert_cli(ConvertConfig(input=str(empty), source="gsm8k", output=str(tmp_path / "o.jsonl"),
                                      target=target))
    assert not (tmp_path / "o.jsonl").exists()


def test_options_the_conversion_would_not_use_are_errors(tmp_path):
    src = tmp_path / "traces.jsonl"
    write_records(src, gym_traces())
    out = str(tmp_path / "o.jsonl")
    bad = [dict(source="prmkit", target="trl", rows="alternatives"),
           dict(source="prmkit", target="trl", neutral="positive"),
           dict(source="gsm8k", target="problems", task="gsm8k"), dict(source="math", target="prmkit"),
           dict(source="prmkit", target="prm800k", trailing_unknown="drop")]
    for kw in bad:
        with pytest.raises(InputError):
            convert_cli(ConvertConfig(input=str(src), output=out, **kw))
    assert not Path(out).exists()


# ---------------------------------------------------------------------------------------------
# problems from GSM8K, MATH, ProcessBench and named columns


def test_gsm8k_problems_every_test_line(tmp_path):
    from prmkit.tasks import get_grader

    out = cli(tmp_path, input=str(gsm8k_test_path()), source="gsm8k", target="problems")
    problems = read_problems(out)
    records = lines_of(gsm8k_test_path())
    assert len(problems) == len(records) == 1319
    traces = gsm8k.records_to_traces(copy.deepcopy(records))
    grader = get_grader("gsm8k")
    for i, (p, r, t) in enumerate(zip(problems, records, traces)):
        m = re.search(r"####\s*([^\n]*?)\s*$", r["answer"])  # the last line's answer, parsed here
        assert (p.id, p.prompt, p.answer, p.task) == (f"gsm8k-{i}", r["question"], m.group(1), "gsm8k"), i
        assert t.problem_id == p.id  # converted gold traces and problems share ids
        assert grader.is_correct(t.final_answer, p.answer), i
    assert problems[0].answer == "18"


def boxed_reference(text: str) -> str:
    """Content of the last \\boxed{...}, by counting braces from its opening one."""
    start = text.rindex("\\boxed{") + len("\\boxed{")
    depth, i = 1, start
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0) if text[i - 1] != "\\" else 0
        i += 1
    return text[start:i - 1]


def test_math_problems_last_boxed_with_nested_braces(tmp_path):
    problems = read_problems(cli(tmp_path, input=str(MATH), source="math", target="problems"))
    assert [p.answer for p in problems] == ["\\frac{1}{2}", "\\dfrac{\\sqrt{3}}{2}", "(1, 2)", "\\{-2, 2\\}"]
    assert [p.answer for p in problems] == [boxed_reference(r["solution"]) for r in lines_of(MATH)]
    assert {p.task for p in problems} == {"math"} and [p.id for p in problems] == [f"math-{i}" for i in range(4)]
    assert problems[0].meta == {"level": "Level 1", "type": "Prealgebra",
                                "solution": lines_of(MATH)[0]["solution"]}
    bad = tmp_path / "nobox.jsonl"
    bad.write_text(json.dumps({"problem": "p", "level": "Level 1", "type": "Algebra", "solution": "It is 3."}) + "\n")
    with pytest.raises(InputError, match=r"nobox.jsonl.*line 1.*solution"):
        cli(tmp_path, input=str(bad), source="math", target="problems", out_name="x.jsonl")


def test_processbench_problems(tmp_path, capsys):
    problems = read_problems(cli(tmp_path, input=str(PB), source="processbench", target="problems"))
    # by hand from the fixture: gsm8k-1 and gsm8k-2 share a problem (gsm8k-2 is the correct one, unboxed:
    # the GSM8K grader reads 12); olympiadbench-0 has no correct sample, so no known answer
    assert [(p.id, p.answer, p.task) for p in problems] == [
        ("gsm8k-0", "16", "gsm8k"), ("gsm8k-1", "12", "gsm8k"), ("math-0", "\\frac{5}{6}", "math"),
        ("omnimath-0", "4", "math")]
    assert "skipped 1" in capsys.readouterr().out


def test_columns_problems(tmp_path):
    src = tmp_path / "hf.jsonl"
    rows = [{"uid": "a1", "q": "What is 2+2?", "gold": 4, "src": "x"}, {"uid": "a2", "q": "What is 3*3?", "gold": "9"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = read_problems(cli(tmp_path, input=str(src), source="columns", target="problems", problem_field="q",
                                 answer_field="gold", id_field="uid", task="gsm8k"))
    assert [(p.id, p.prompt, p.answer, p.task, p.meta) for p in problems] == [
        ("a1", "What is 2+2?", "4", "gsm8k", {"src": "x"}), ("a2", "What is 3*3?", "9", "gsm8k", {})]
    import pyarrow as pa
    import pyarrow.parquet as pq

    shard = tmp_path / "train-00000-of-00001.parquet"  # how a Hugging Face dataset ships its rows
    pq.write_table(pa.Table.from_pylist([{"uid": "a1", "q": "What is 2+2?", "gold": "4"}]), shard)
    from_parquet = read_problems(cli(tmp_path, input=str(shard), source="columns", target="problems",
                                     problem_field="q", answer_field="gold", task="gsm8k", out_name="pq.jsonl"))
    assert [(p.id, p.prompt, p.answer, p.meta) for p in from_parquet] == [
        ("gsm8k-0", "What is 2+2?", "4", {"uid": "a1"})]
    import datasets

    datasets.Dataset.from_list(rows[1:]).save_to_disk(str(tmp_path / "saved"))
    saved = read_problems(cli(tmp_path, input=str(tmp_path / "saved"), source="columns", target="problems",
                              problem_field="q", answer_field="gold", id_field="uid", task="gsm8k", out_name="s.jsonl"))
    assert [(p.id, p.prompt, p.answer) for p in saved] == [("a2", "What is 3*3?", "9")]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[1:])}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputError, match="pass one split"):
        cli(tmp_path, input=str(tmp_path / "dd"), source="columns", target="problems", problem_field="q",
            answer_field="gold", task="gsm8k", out_name="dd.jsonl")
    with pytest.raises(InputError, match="--task"):
        cli(tmp_path, input=str(src), source="columns", target="problems", problem_field="q", answer_field="gold",
            out_name="x.jsonl")
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps({**r, "uid": "same"}) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"dup.jsonl.*line 2.*duplicate problem id 'same'"):
        cli(tmp_path, input=str(dup), source="columns", target="problems", problem_field="q", answer_field="gold",
            id_field="uid", task="gsm8k", out_name="y.jsonl")
    assert not (tmp_path / "y.jsonl").exists()


# ---------------------------------------------------------------------------------------------
# one final-answer convention for converted and sampled traces


def test_converted_gsm8k_keeps_its_answer_line_like_sampled_traces():
    from prmkit.gym.task import make_split, make_trace
    from prmkit.tasks import get_grader

    problem = make_split("test", 1)[0]
    sampled = make_trace(problem, "7+3=10\nA:10")
    assert sampled.steps[-1] == "A:10"  # a sampled trace's last step states its answer
    grader = get_grader("gsm8k")
    traces = load_traces(gsm8k_test_path(), "gsm8k")
    for t in traces:
        assert t.steps[-1].startswith("####")
        # the steps joined as a policy writes them grade to the same answer as the converter's
        assert grader.extract_answer("\n".join(t.steps)) == grader.extract_answer("#### " + t.final_answer)
    trl_row = trl.trace_to_record(Trace(**{**traces[0].__dict__, "labels": StepLabels([1.0] * 3, method="gold")}))
    assert trl_row["completions"][-1] == "#### 18"
