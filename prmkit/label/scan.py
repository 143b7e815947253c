"""SCAN self-denoising MC labels (SCAN, arXiv 2509.16548).

1. Self-confidence SC(q) = accuracy of the annotator's own responses to question q — here the
   input traces of that question (SCAN labels the same N responses it measures SC on).
   Questions with SC < `min_self_conf` (0.75) are dropped: their traces get no labels.
2. Traces graded correct: every step 1.0, no rollouts.
3. Traces graded wrong: sequential MC from step 0 (K rollouts per prefix), stopping at the first
   prefix whose rollouts all fail (t_pred); steps after t_pred are unknown (SCAN truncates).
4. Robust labels (default): the `window` steps before t_pred get min(1, c_t / SC)
   (`rules.scan_normalized_labels`); `labels.meta["loss"]` tells the trainer to use soft-target BCE.
   With `robust=False` the labels are hard (1 before t_pred, 0 at it).
A wrong trace whose MC never reaches 0 (it states no final answer) is dropped, as SCAN does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from prmkit.label import rules
from prmkit.label.rollouts import (
    Cost,
    Probe,
    RolloutConfig,
    answer_key,
    estimate,
    trace_correct,
)
from prmkit.progress import progress
from prmkit.schema import Problem, StepLabels, Trace


def self_confidence_by_problem(traces: Sequence[Trace], problems: dict[str, Problem] | None = None) -> dict[str, float]:
    """SC per problem id from the graded input traces (`rules.self_confidence`)."""
    tally: dict[str, list[int]] = {}
    for i, t in enumerate(traces):
        ok = trace_correct(t, answer_key(t, problems, i))
        c = tally.setdefault(t.problem_id, [0, 0])
        c[0] += int(ok)
        c[1] += 1
    return {pid: rules.self_confidence(c, n) for pid, (c, n) in tally.items()}


def _dropped(trace: Trace, reason: str, sc: float, cost: Cost | None = None) -> Trace:
    info = {"method": "scan", "dropped": reason, "self_confidence": sc}
    if cost is not None:
        info.update(rollouts=cost.rollouts, policy_tokens=cost.tokens)
    return dataclasses.replace(trace, labels=None, meta={**trace.meta, "label": info})


def scan_chunk(items: Sequence[tuple[int, Trace]], sampler, rc: RolloutConfig, sc_map: dict[str, float],
               problems: dict[str, Problem] | None = None, *, min_self_conf: float = 0.75,
               window: int | None = 2, robust: bool = True, batch_size: int = 64, bar=None) -> list[Trace]:
    out: list[Trace | None] = [None] * len(items)
    active: dict[int, tuple[list[int], Cost]] = {}  # item -> (counts so far, cost)
    keys = {}
    for j, (idx, t) in enumerate(items):
        sc = sc_map[t.problem_id]
        keys[j] = answer_key(t, problems, idx)
        if not rules.scan_keep_question(sc, min_self_conf):
            out[j] = _dropped(t, "low_self_confidence", sc)
        elif trace_correct(t, keys[j]):
            out[j] = dataclasses.replace(t, labels=StepLabels(
                values=[1.0] * len(t.steps), method="scan", rollouts=0, policy_tokens=0,
                meta={"self_confidence": sc, "first_error": -1, "robust": robust, "loss": "bce_soft"}))
        else:
            active[j] = ([], Cost())
    while active:
        requests = [(j, Probe(items[j][0], items[j][1], keys[j], len(counts))) for j, (counts, _) in active.items()]
        for c in range(0, len(requests), batch_size):
            part = requests[c:c + batch_size]
            for (j, _), r in zip(part, estimate(sampler, [p for _, p in part], rc)):
                counts, cost = active[j]
                counts.append(r.correct)
                cost.add(r)
        for j in list(active):
            counts, cost = active[j]
            t = items[j][1]
            sc = sc_map[t.problem_id]
            if counts[-1] == 0 or len(counts) == len(t.steps):
                del active[j]
                if counts[-1] != 0:
                    out[j] = _dropped(t, "mc_never_zero", sc, cost)
                    continue
                fe = len(counts) - 1
                mc = [c / rc.k for c in counts]
                if robust:
                    kept = rules.scan_normalized_labels(mc, sc, fe, window)
                else:
                    kept = [1.0] * fe + [0.0]
                values: list[float | None] = list(kept) + [None] * (len(t.steps) - len(kept))
                out[j] = dataclasses.replace(t, labels=StepLabels(
                    values=values, method="scan", rollouts=cost.rollouts, policy_tokens=cost.tokens,
                    meta={"k": rc.k, "self_confidence": sc, "first_error": fe, "correct_counts": counts,
                          "window": window, "robust": robust, "loss": "bce_soft" if robust else "bce"}))
    if bar is not None:
        bar.update(len(items))
    return out  # type: ignore[return-value]


def label_scan(traces: list[Trace], sampler, *, k: int = 8, seed: int = 0, max_new_tokens: int = 96,
               temperature: float = 1.0, batch_size: int = 64, problems: dict[str, Problem] | None = None,
               min_self_conf: float = 0.75, window: int | None = 2, robust: bool = True,
               self_confidence: dict[str, float] | None = None, start_index: int = 0,
               sep: str | None = None) -> list[Trace]:
    """Copies of `traces` with SCAN labels (`method` "scan"); dropped traces keep `labels=None`
    and say why in `meta["label"]`.  Self-confidence comes from `traces` unless given."""
    rc = RolloutConfig(k=k, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                       sep=sep if sep is not None else getattr(sampler, "sep", "\n"))
    sc_map = self_confidence if self_confidence is not None else self_confidence_by_problem(traces, problems)
    bar = progress(total=len(traces), desc="scan traces")
    out = scan_chunk(list(enumerate(traces, start_index)), sampler, rc, sc_map, problems,
                     min_self_conf=min_self_conf, window=window, robust=robust, batch_size=batch_size, bar=bar)
    bar.close()
    return out
