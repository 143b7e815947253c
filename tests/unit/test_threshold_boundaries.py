"""Every threshold rule at its boundary: a score exactly at the threshold, and the nearest floats
either side, with the side written out by hand from each rule's definition (issue 18 item 10:
flipping one `<` to `<=` must fail here, not pass unnoticed)."""

from __future__ import annotations

import math

import pytest
import torch

from prmkit.evaluate.metrics import fit_threshold, predicted_first_error
from prmkit.label import rules
from prmkit.label.report import evaluate_labels, predicted_first_error as label_first_error
from prmkit.schema import StepLabels, Trace

THRESHOLDS = [0.0, 0.25, 0.5, 0.9, 1.0]


def below(t: float) -> float:
    return math.nextafter(t, -math.inf)


def above(t: float) -> float:
    return math.nextafter(t, math.inf)


@pytest.mark.parametrize("t", THRESHOLDS)
def test_processbench_first_error_is_strictly_below(t):
    """ProcessBench (arXiv 2412.06559): the first step whose score is < tau; a score equal to tau is fine."""
    assert predicted_first_error([t, t, t], t) == -1
    assert predicted_first_error([above(t), t, below(t)], t) == 2
    assert predicted_first_error([t, below(t), below(t)], t) == 1


@pytest.mark.parametrize("t", THRESHOLDS)
def test_label_report_first_error_is_strictly_below_and_skips_unknown(t):
    assert label_first_error([t, None, t], t) == -1
    assert label_first_error([None, t, below(t)], t) == 2


def _trace(values, first_error):
    return Trace(problem_id="p", prompt="Q", steps=[f"s{i}" for i in range(len(values))], first_error=first_error,
                 labels=StepLabels(values=list(values), method="verify"))


def test_label_report_step_verdicts_at_the_threshold():
    """Gold: step 1 is the first error. Labels 0.5 (at tau: good) then just below (bad).
    By hand: one true bad step flagged, nothing good flagged: precision 1, recall 1, agreement 1."""
    m = evaluate_labels([_trace([0.5, below(0.5)], 1)], threshold=0.5)
    assert (m["bad_precision"], m["bad_recall"], m["first_error_agreement"]) == (1.0, 1.0, 1.0)
    # a good trace labelled exactly at tau everywhere: no step is predicted bad, so precision is undefined
    m = evaluate_labels([_trace([0.5, 0.5], -1)], threshold=0.5)
    assert math.isnan(m["bad_precision"]) and m["first_error_agreement"] == 1.0


@pytest.mark.parametrize("t", [0.5, 1e-9])
def test_mc_first_error_from_labels_is_strictly_below(t):
    assert rules.first_error_from_labels([1.0, t, t], t) == -1
    assert rules.first_error_from_labels([1.0, t, below(t)], t) == 2


def test_relative_progress_label_is_at_least_eps():
    """GenPRM (arXiv 2504.00891): label 1 iff P_t = Q_t / Q_{t-1} >= eps. Q 1 -> 0.8 gives P = 0.8 exactly
    and Q 0.8 -> 0.4 gives P = 0.5 exactly (both at eps: label 1); the next float down gives 0."""
    assert rules.relative_progress_labels([1.0, 0.8], eps=0.8) == [1.0]
    assert rules.relative_progress_labels([1.0, below(0.8)], eps=0.8) == [0.0]
    assert rules.relative_progress_labels([1.0, 0.8, 0.4], eps=0.5) == [1.0, 1.0]
    assert rules.relative_progress_labels([1.0, 0.8, below(0.4)], eps=0.5) == [1.0, 0.0]


def test_scan_keeps_a_question_at_exactly_the_minimum_self_confidence():
    """SCAN (arXiv 2509.16548) keeps a question when SC >= 0.75: 3 of 4 right is kept, just below is not."""
    assert rules.scan_keep_question(rules.self_confidence(3, 4), 0.75)
    assert not rules.scan_keep_question(below(0.75), 0.75)
    assert rules.scan_keep_question(above(0.75), 0.75)


def test_prime_accuracy_filter_bounds_are_inclusive():
    """PRIME (arXiv 2502.01456) keeps prompts whose group accuracy is in [lower, upper]. K = 4 per
    group, accuracies 0, 1/4, 2/4, 3/4, 1 with bounds 0.25 and 0.75: by hand keep groups 1, 2, 3."""
    from prmkit.rl.filtering import accuracy_filter

    outcomes = torch.tensor([0., 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1])
    groups = torch.arange(5).repeat_interleave(4)
    kept = accuracy_filter(outcomes, groups, lower=0.25, upper=0.75)
    assert kept.tolist() == [False] * 4 + [True] * 12 + [False] * 4


def test_fit_threshold_at_a_score_equal_to_the_candidate():
    """Candidate tau = 0.5 equals scores. Trace A (gold 1): 0.5 is not below, 0.2 is -> predicted 1, right.
    Trace B (gold -1): 0.5, 0.5 are not below -> predicted -1, right. F1 = 1 by hand; with the rule
    flipped to <= both would be wrong (A predicted 0, B predicted 0)."""
    assert fit_threshold([[0.5, 0.2], [0.5, 0.5]], [1, -1], grid=[0.5]) == (0.5, 1.0)
    # tau just above 0.5 flags every 0.5: A predicted 0 (wrong), B predicted 0 (wrong) -> F1 0
    assert fit_threshold([[0.5, 0.2], [0.5, 0.5]], [1, -1], grid=[above(0.5)]) == (above(0.5), 0.0)


def test_math_shepherd_soft_label_sign_at_the_threshold():
    """Math-Shepherd export: a soft label >= threshold is '+', below is '-'."""
    from prmkit.formats.math_shepherd import trace_to_record

    trace = Trace(problem_id="p", prompt="Q?", steps=["a", "b"],
                  labels=StepLabels(values=[0.5, below(0.5)], method="mc"))
    assert trace_to_record(trace, threshold=0.5)["label"].endswith("a +\nb -")


class _FixedScores:
    """A reward model stand-in whose first-step score is exactly the threshold (attack_probes only
    reads `score`, `aggregation` and `threshold`)."""

    aggregation, threshold = "min", 0.5

    def score(self, prompts, steps):
        return [[0.5] + [0.9] * (len(s) - 1) for s in steps[:1]] + [[below(0.5)] for _ in steps[1:]]


def test_attack_probe_share_below_threshold_is_strict():
    """Two prompts: the first probe step scores exactly tau on one (not below), just below on the other."""
    from prmkit.evaluate.diagnostics import attack_probes

    out = attack_probes(_FixedScores(), ["Q1", "Q2"], [0.9], probes=["x"])
    assert out["'x'"]["share_below_threshold"] == 0.5
