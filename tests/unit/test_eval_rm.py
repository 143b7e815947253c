"""Evaluation procedures against hand-computed values: ProcessBench scoring at a threshold, step labels,
the "Lessons" diagnostics, Best-of-N curves / pass@k / CoT-pass@k on tiny pools, and reading the real
ProcessBench JSON layout."""

from __future__ import annotations

import json
import math

import pytest

from prmkit.evaluate.bon import group_by_problem, model_curves, outcome_curves, powers_of_two
from prmkit.evaluate.diagnostics import min_on_last_share, right_answer_wrong_step
from prmkit.evaluate.processbench import evaluate_scores, gold_step_labels, read_eval_traces
from prmkit.schema import Trace


def test_gold_step_labels_stop_at_the_first_error():
    assert gold_step_labels(-1, 3) == [(0, 1), (1, 1), (2, 1)]
    assert gold_step_labels(2, 4) == [(0, 1), (1, 1), (2, 0)]
    assert gold_step_labels(0, 4) == [(0, 0)]


def test_evaluate_scores_by_hand():
    scores = [[0.9, 0.8, 0.7], [0.9, 0.2, 0.1], [0.3, 0.9], [0.9, 0.9]]
    gold = [-1, 1, 1, 0]
    outcomes = [1.0, 0.0, 1.0, 0.0]
    r = evaluate_scores(scores, gold, 0.5, outcomes)
    # predictions: -1, 1, 0, -1 -> erroneous traces right: trace 1 only (1/3); correct traces: 1/1
    assert r["acc_error"] == pytest.approx(1 / 3)
    assert r["acc_correct"] == 1.0
    assert r["f1"] == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    # labelled steps: t0 all 3 good; t1 step0 good, step1 bad; t2 step0 good, step1 bad; t3 step0 bad
    probs = [0.9, 0.8, 0.7, 0.9, 0.2, 0.3, 0.9, 0.9]
    labels = [1, 1, 1, 1, 0, 1, 0, 0]
    pairs = [(p, n) for p, y in zip(probs, labels) if y for n, z in zip(probs, labels) if not z]
    manual_auroc = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert r["step_auroc"] == pytest.approx(manual_auroc)
    assert r["labelled_steps"] == 8
    # min on last step: t0 yes (0.7), t1 yes (0.1), t2 no, t3 tie -> first min is step 0 -> no
    assert r["min_on_last_share"] == pytest.approx(2 / 4)
    # right answer, wrong step: trace 2 (gold 1, outcome 1), predicted 0 -> flagged but not exact
    assert (r["raws_traces"], r["raws_exact_accuracy"], r["raws_flagged"]) == (1, 0.0, 1.0)


def test_diagnostics_by_hand():
    assert min_on_last_share([[0.5], [0.2, 0.1], [0.1, 0.1], [0.3, 0.5, 0.2]]) == pytest.approx(2 / 3)
    assert math.isnan(min_on_last_share([[0.4]]))
    r = right_answer_wrong_step([0, -1, 2, 1], [0, 1, 2, -1], [1.0, 1.0, 0.0, 1.0])
    assert r == {"raws_traces": 2, "raws_exact_accuracy": 0.5, "raws_flagged": 0.5}


def _t(pid, answer, outcome, fe):
    return Trace(problem_id=pid, prompt="Q", steps=["s"], final_answer=answer, outcome=outcome, first_error=fe)


def test_bon_curves_by_hand():
    traces = [_t("a", "1", 0.0, 0), _t("a", "2", 1.0, -1), _t("a", "1", 0.0, 0),
              _t("b", "5", 1.0, 0), _t("b", "5", 1.0, -1), _t("b", "3", 0.0, 0)]
    groups = group_by_problem(traces, 3)
    assert groups == [[0, 1, 2], [3, 4, 5]]
    ref = outcome_curves(traces, groups, [1, 3], resamples=50, seed=0)
    assert ref["majority"][3] == pytest.approx(0.5)        # a: "1" wins (wrong); b: "5" wins (right)
    assert ref["majority"][1] == pytest.approx((1 / 3 + 2 / 3) / 2, abs=0.15)
    assert ref["pass_at_k"][1] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert ref["pass_at_k"][3] == 1.0
    # CoT-pass: a has 1 clean right sample, b has 1 (the other right one has a wrong step)
    assert ref["cot_pass_at_k"][1] == pytest.approx((1 / 3 + 1 / 3) / 2)
    scores = [[0.1], [0.9], [0.2], [0.5], [0.6], [0.95]]
    m = model_curves(traces, groups, scores, ["last"], [3], resamples=10, seed=0)["last"]
    assert m["argmax"][3] == pytest.approx(0.5)            # a: picks 0.9 (right); b: picks 0.95 (wrong)
    assert m["weighted"][3] == pytest.approx(1.0)          # a: "2" 0.9 > "1" 0.3; b: "5" 1.1 > "3" 0.95
    with pytest.raises(ValueError, match=">= 4 traces per problem"):
        group_by_problem(traces, 4)


def test_powers_of_two():
    assert powers_of_two(16) == [1, 2, 4, 8, 16]
    assert powers_of_two(6) == [1, 2, 4, 6]
    assert powers_of_two(1) == [1]


def test_reads_the_real_processbench_layout(tmp_path):
    records = [{"id": "gsm8k-0", "generator": "Qwen2-7B-Instruct", "problem": "What is 2+3*4?",
                "steps": ["3*4=12.", "2+12=14."], "final_answer_correct": True, "label": -1},
               {"id": "gsm8k-1", "generator": "Qwen2-7B-Instruct", "problem": "What is 5-1?",
                "steps": ["5-1=3.", "So 3."], "final_answer_correct": False, "label": 0}]
    f = tmp_path / "gsm8k.json"
    f.write_text(json.dumps(records))
    traces = read_eval_traces(str(f))
    assert [(t.prompt, t.steps, t.first_error, t.outcome) for t in traces] == [
        ("What is 2+3*4?", ["3*4=12.", "2+12=14."], -1, 1.0), ("What is 5-1?", ["5-1=3.", "So 3."], 0, 0.0)]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{**records[0], "label": 7}]))
    with pytest.raises(ValueError, match=r"bad.json.*line 1.*label"):
        read_eval_traces(str(bad))
