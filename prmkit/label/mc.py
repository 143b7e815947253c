"""Math-Shepherd Monte Carlo step labels (Math-Shepherd, arXiv 2312.08935): K completions from every step prefix.

Hard label: 1.0 iff any completion reaches the gold answer; soft label: the fraction that do
(`rules.mc_hard_labels` / `rules.mc_soft_labels`).  The last step of a trace that states a final
answer is labelled by that answer's correctness without rollouts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from prmkit.errors import InputError
from prmkit.label import rules
from prmkit.label.rollouts import Cost, Probe, RolloutConfig, answer_key, estimate
from prmkit.progress import progress
from prmkit.schema import Problem, StepLabels, Trace


def mc_counts(items: Sequence[tuple[int, Trace]], sampler, rc: RolloutConfig,
              problems: dict[str, Problem] | None = None, batch_size: int = 64,
              bar=None) -> list[tuple[list[int], Cost]]:
    """Correct-completion counts for every prefix of every trace, with the cost per trace.
    `items` are (global index, trace); the index seeds the trace's rollouts."""
    probes = []
    for idx, t in items:
        key = answer_key(t, problems, idx)
        probes += [Probe(idx, t, key, i) for i in range(len(t.steps))]
    results = []
    for c in range(0, len(probes), batch_size):
        part = estimate(sampler, probes[c:c + batch_size], rc)
        results += part
        if bar is not None:
            bar.update(len(part))
    out, pos = [], 0
    for _, t in items:
        cost, counts = Cost(), []
        for r in results[pos:pos + len(t.steps)]:
            counts.append(r.correct)
            cost.add(r)
        pos += len(t.steps)
        out.append((counts, cost))
    return out


def mc_labels_from_counts(trace: Trace, counts: list[int], cost: Cost, k: int, mode: str) -> Trace:
    if mode == "hard":
        values = rules.mc_hard_labels(counts, k)
    elif mode == "soft":
        values = rules.mc_soft_labels(counts, k)
    else:
        raise InputError(f"expected mode 'hard' or 'soft', got {mode!r}", field="mode")
    labels = StepLabels(values=list(values), method=f"mc_{mode}", rollouts=cost.rollouts, policy_tokens=cost.tokens,
                        meta={"k": k, "correct_counts": list(counts)})
    return dataclasses.replace(trace, labels=labels)


def label_mc(traces: list[Trace], sampler, *, k: int = 8, mode: str = "hard", seed: int = 0,
             max_new_tokens: int = 96, temperature: float = 1.0, batch_size: int = 64,
             problems: dict[str, Problem] | None = None, start_index: int = 0, sep: str | None = None,
             share_prefix: bool = True) -> list[Trace]:
    """Copies of `traces` with Math-Shepherd MC labels (`method` "mc_hard" or "mc_soft").

    `sampler` is any `Sampler` (the completer); `k` completions per step prefix; `batch_size`
    prefixes per sampler call.  Trace j's rollouts are seeded by (seed, start_index + j), so a
    trace gets the same labels whatever it is labelled with.  `problems` maps problem ids to gold
    answers (gym answers are read from the prompt).  `labels.rollouts` / `labels.policy_tokens`
    are the completions sampled and tokens generated for the trace; `labels.meta["correct_counts"]`
    the raw counts.
    """
    rc = RolloutConfig(k=k, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                       sep=sep if sep is not None else getattr(sampler, "sep", "\n"), share_prefix=share_prefix)
    items = list(enumerate(traces, start_index))
    bar = progress(total=sum(len(t.steps) for t in traces), desc=f"mc-{mode} prefixes")
    counted = mc_counts(items, sampler, rc, problems, batch_size, bar)
    bar.close()
    return [mc_labels_from_counts(t, counts, cost, k, mode) for t, (counts, cost) in zip(traces, counted)]
