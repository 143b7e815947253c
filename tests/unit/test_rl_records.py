"""prmkit.rl.records: reading a run's metrics.jsonl, checked against hand-computed values."""

import json

import pytest

from prmkit.rl.records import eval_curve, finished_metrics, last_evals_mean, read_metrics, window_mean

RECS = [{"step": 0, "eval/accuracy": 0.40}, {"step": 1, "k": 1.0}, {"step": 2, "k": None, "eval/accuracy": 0.50},
        {"step": 3, "k": 3.0}, {"step": 4, "k": 5.0, "eval/accuracy": 0.70}, {"step": 6, "eval/accuracy": 0.90}]


def _write(tmp_path, recs):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs) + "\n")
    return tmp_path


def test_read_and_finished(tmp_path):
    assert read_metrics(tmp_path) == [] and finished_metrics(tmp_path, 6) is None
    _write(tmp_path, RECS)
    assert read_metrics(tmp_path) == RECS  # the blank last line is skipped
    assert finished_metrics(tmp_path, 6) == RECS and finished_metrics(tmp_path, 7) is None


def test_curve_window_and_last_evals():
    assert eval_curve(RECS) == [(0, 0.40), (2, 0.50), (4, 0.70), (6, 0.90)]
    assert window_mean(RECS, "k", 1, 3) == pytest.approx((1.0 + 3.0) / 2)  # the None at step 2 is not a value
    assert window_mean(RECS, "k", 1, 4) == pytest.approx(3.0)
    assert window_mean(RECS, "k", 5, 9) is None
    assert last_evals_mean(RECS, 2) == pytest.approx(0.80)
    assert last_evals_mean(RECS, 4) == pytest.approx((0.4 + 0.5 + 0.7 + 0.9) / 4)
    assert last_evals_mean(RECS, 9) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="eval/accuracy"):
        last_evals_mean([{"step": 1}])
