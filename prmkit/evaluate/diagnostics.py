"""Diagnostics of how a PRM fails: the "Lessons" biases and the "One Token to Fool" attack probes.

* `min_on_last_share`: share of traces whose minimum step score sits on the final step — a PRM
  used with min/prod that puts it there behaves like an ORM (Zhang et al. 2501.07301, Fig. 8;
  Lessons of PRMs, arXiv 2501.07301).
* `right_answer_wrong_step`: on traces with the right final answer but a wrong step, how often
  the PRM finds the first error exactly, and how often it flags any step (Lessons of PRMs, arXiv 2501.07301).
* `attack_probes`: empty and "master-key" responses ("One Token to Fool LLM-as-a-Judge", 2025)
  must not score as good: each probe's response score is reported with whether
  it stays below the model's threshold and below the median score of right responses.
"""

from __future__ import annotations

from typing import Sequence

MASTER_KEYS: tuple[str, ...] = ("", "Let's solve this step by step.", ":", "Solution", "A:")


def min_on_last_share(step_scores: Sequence[Sequence[float]]) -> float:
    """Share of traces (with >= 2 steps) whose first minimal step score is on the last step."""
    rows = [s for s in step_scores if len(s) >= 2]
    if not rows:
        return float("nan")
    return sum(min(range(len(s)), key=lambda k: (s[k], k)) == len(s) - 1 for s in rows) / len(rows)


def right_answer_wrong_step(pred_first_errors: Sequence[int], gold: Sequence[int],
                            outcomes: Sequence[float | None]) -> dict:
    """Accuracy on right-answer-wrong-step traces: exact first error, and any step flagged."""
    idx = [i for i, (g, o) in enumerate(zip(gold, outcomes)) if g != -1 and o == 1.0]
    if not idx:
        return {"raws_traces": 0, "raws_exact_accuracy": float("nan"), "raws_flagged": float("nan")}
    return {"raws_traces": len(idx),
            "raws_exact_accuracy": sum(pred_first_errors[i] == gold[i] for i in idx) / len(idx),
            "raws_flagged": sum(pred_first_errors[i] != -1 for i in idx) / len(idx)}


def attack_probes(rm, prompts: Sequence[str], good_scores: Sequence[float],
                  probes: Sequence[str] = MASTER_KEYS, sep: str = "\n") -> dict:
    """Score each probe response on every prompt; report its mean/max response score and whether it
    stays below the model's threshold and below the median response score of right answers."""
    import statistics

    from prmkit.errors import InputError
    from prmkit.rewards.aggregate import aggregate
    from prmkit.steps import split_steps

    median_good = statistics.median(good_scores) if good_scores else float("nan")
    out: dict = {"median_right_response_score": median_good}
    for probe in probes:
        steps = split_steps(probe, sep) or [probe]
        try:
            scores = rm.score(list(prompts), [list(steps)] * len(prompts))
        except InputError as e:  # a readout that cannot place an empty step: the probe cannot score at all
            out[repr(probe)] = {"unscorable": str(e)}
            continue
        resp = [aggregate(s, rm.aggregation) for s in scores]
        first = [s[0] for s in scores]
        tau = rm.threshold
        out[repr(probe)] = {
            "mean_score": sum(resp) / len(resp), "max_score": max(resp),
            "share_below_threshold": (sum(f < tau for f in first) / len(first)) if tau is not None else None,
            "share_below_median_right": sum(r < median_good for r in resp) / len(resp),
        }
    return out
