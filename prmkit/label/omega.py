"""OmegaPRM first-error labels by binary search over step prefixes (OmegaPRM, arXiv 2406.06592).

Each trace's search is `rules.binary_search_first_error`; the searches of many traces run in
lockstep so that every round's probes (one prefix per unfinished trace, K rollouts each) go to the
sampler as one batch.  A round re-runs each pure search from the start over its cached probe
values until it asks for a prefix it has not seen — O(log S) work, no duplicated search logic.
Labels: steps before the located error 1.0, the error 0.0, later steps unknown (`rules.omega_labels`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from prmkit.label import rules
from prmkit.label.rollouts import (
    Cost,
    Probe,
    ProbeResult,
    RolloutConfig,
    answer_key,
    estimate,
)
from prmkit.progress import progress
from prmkit.schema import Problem, StepLabels, Trace


class _NeedProbe(Exception):
    def __init__(self, prefix: int):
        self.prefix = prefix


def omega_search(items: Sequence[tuple[int, Trace]], sampler, rc: RolloutConfig,
                 problems: dict[str, Problem] | None = None, batch_size: int = 64,
                 bar=None) -> list[tuple[int, list[tuple[int, int]], Cost]]:
    """(first error, probes [(prefix, correct count)] in search order, cost) per trace."""
    keys = [answer_key(t, problems, idx) for idx, t in items]
    caches: list[dict[int, ProbeResult]] = [{} for _ in items]
    done: dict[int, tuple[int, list[int]]] = {}
    while len(done) < len(items):
        requests: list[tuple[int, Probe]] = []
        for j, (idx, t) in enumerate(items):
            if j in done:
                continue
            cache = caches[j]

            def probe(i: int, cache=cache) -> float:
                if i not in cache:
                    raise _NeedProbe(i)
                return cache[i].mc

            try:
                done[j] = rules.binary_search_first_error(len(t.steps), probe)
            except _NeedProbe as need:
                requests.append((j, Probe(idx, t, keys[j], need.prefix)))
        for c in range(0, len(requests), batch_size):
            part = requests[c:c + batch_size]
            for (j, p), r in zip(part, estimate(sampler, [p for _, p in part], rc)):
                caches[j][p.prefix] = r
    out = []
    for j in range(len(items)):
        fe, order = done[j]
        cost = Cost()
        for r in caches[j].values():
            cost.add(r)
        out.append((fe, [(i, caches[j][i].correct) for i in order], cost))
        if bar is not None:
            bar.update(1)
    return out


def omega_trace(trace: Trace, first_error: int, probes: list[tuple[int, int]], cost: Cost, k: int) -> Trace:
    labels = StepLabels(values=rules.omega_labels(len(trace.steps), first_error), method="omega",
                        rollouts=cost.rollouts, policy_tokens=cost.tokens,
                        meta={"k": k, "first_error": first_error, "probes": [list(p) for p in probes]})
    return dataclasses.replace(trace, labels=labels)


def label_omega(traces: list[Trace], sampler, *, k: int = 8, seed: int = 0, max_new_tokens: int = 96,
                temperature: float = 1.0, batch_size: int = 64, problems: dict[str, Problem] | None = None,
                start_index: int = 0, sep: str | None = None) -> list[Trace]:
    """Copies of `traces` labelled by OmegaPRM's binary search (`method` "omega"); rollouts are
    seeded per (seed, trace index, prefix) exactly as in `label_mc`, so a prefix probed by both
    methods gets the same K rollouts."""
    rc = RolloutConfig(k=k, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                       sep=sep if sep is not None else getattr(sampler, "sep", "\n"))
    bar = progress(total=len(traces), desc="omega traces")
    found = omega_search(list(enumerate(traces, start_index)), sampler, rc, problems, batch_size, bar)
    bar.close()
    return [omega_trace(t, fe, probes, cost, k) for t, (fe, probes, cost) in zip(traces, found)]
