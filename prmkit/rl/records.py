"""Reading a finished or running `prmkit rl` run from its files (metrics.jsonl), no models loaded:
the evaluation curve, windowed means of a logged key, the mean of the last evaluations. Benchmarks and
`rl-compare` summaries use these so that every one reads a run the same way."""

from __future__ import annotations

import json
import statistics
from pathlib import Path


def read_metrics(out: Path | str) -> list[dict]:
    """Every record in `<out>/metrics.jsonl` so far ([] when the run has not started)."""
    path = Path(out) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def finished_metrics(out: Path | str, steps: int) -> list[dict] | None:
    """The run's records when its last record is step `steps`, else None (unfinished or absent)."""
    recs = read_metrics(out)
    return recs if recs and recs[-1].get("step") == steps else None


def eval_curve(recs: list[dict], key: str = "eval/accuracy") -> list[tuple[int, float]]:
    """[(step, value)] of the records that carry `key`, in file order."""
    return [(r["step"], r[key]) for r in recs if key in r]


def window_mean(recs: list[dict], key: str, lo: int, hi: int) -> float | None:
    """Mean of `key` over the records with lo <= step <= hi that carry a value (None when none do)."""
    vals = [r[key] for r in recs if lo <= r["step"] <= hi and r.get(key) is not None]
    return statistics.fmean(vals) if vals else None


def last_evals_mean(recs: list[dict], k: int = 4, key: str = "eval/accuracy") -> float:
    """Mean of the last k evaluations of a run (fewer when it has fewer); an error when it has none."""
    curve = eval_curve(recs, key)
    if not curve:
        raise ValueError(f"no record carries {key!r}")
    return statistics.fmean(v for _, v in curve[-k:])
