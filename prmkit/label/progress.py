"""Progress labels: PAV process advantages and GenPRM relative-progress labels (PAV, arXiv 2410.08146, GenPRM, arXiv 2504.00891).

Q_0 .. Q_S are MC success estimates of a *prover* policy (the completer by default, optionally a
Best-of-K(π) prover, PAV, arXiv 2410.08146) from the question alone and from each step prefix.  Per step:
progress A_k = Q_k − Q_{k−1} (PAV), relative progress P_k = Q_k / Q_{k−1} (GenPRM) and the
binary label 1[P_k ≥ ε] stored as `values` (`rules.relative_progress_labels`).  The ReST-MCTS*
value-target rule over a search tree is `rules.rest_mcts_value_targets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from prmkit.label import rules
from prmkit.label.rollouts import Cost, Probe, RolloutConfig, answer_key, estimate
from prmkit.progress import progress
from prmkit.schema import Problem, StepLabels, Trace


def progress_chunk(items: Sequence[tuple[int, Trace]], sampler, rc: RolloutConfig,
                   problems: dict[str, Problem] | None = None, *, eps: float = 0.8, prover_bok: int = 1,
                   batch_size: int = 64, bar=None) -> list[Trace]:
    probes = []
    for idx, t in items:
        key = answer_key(t, problems, idx)
        probes += [Probe(idx, t, key, i, tag="prover") for i in range(-1, len(t.steps))]
    results = []
    for c in range(0, len(probes), batch_size):
        results += estimate(sampler, probes[c:c + batch_size], rc)
    out, pos = [], 0
    for _, t in items:
        rs = results[pos:pos + len(t.steps) + 1]
        pos += len(t.steps) + 1
        cost = Cost()
        for r in rs:
            cost.add(r)
        q = [r.mc for r in rs]
        if prover_bok > 1:
            q = [rules.best_of_k_q(v, prover_bok) for v in q]
        ratios = rules.relative_progress(q)
        labels = StepLabels(values=rules.relative_progress_labels(q, eps), method="progress",
                            rollouts=cost.rollouts, policy_tokens=cost.tokens,
                            meta={"k": rc.k, "q_values": q, "progress": rules.progress(q),
                                  "relative_progress": [None if r is None or r == float("inf") else r for r in ratios],
                                  "revived": [r == float("inf") for r in ratios], "eps": eps,
                                  "prover_bok": prover_bok})
        out.append(dataclasses.replace(t, labels=labels))
        if bar is not None:
            bar.update(1)
    return out


def label_progress(traces: list[Trace], prover, *, k: int = 8, seed: int = 0, max_new_tokens: int = 96,
                   temperature: float = 1.0, batch_size: int = 64, problems: dict[str, Problem] | None = None,
                   eps: float = 0.8, prover_bok: int = 1, start_index: int = 0, sep: str | None = None) -> list[Trace]:
    """Copies of `traces` with relative-progress labels (`method` "progress"); `labels.meta` holds
    the prover's Q values (Q_0 first), PAV progress and GenPRM ratios (None where undefined)."""
    rc = RolloutConfig(k=k, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                       sep=sep if sep is not None else getattr(prover, "sep", "\n"))
    bar = progress(total=len(traces), desc="progress traces")
    out = progress_chunk(list(enumerate(traces, start_index)), prover, rc, problems, eps=eps,
                         prover_bok=prover_bok, batch_size=batch_size, bar=bar)
    bar.close()
    return out
