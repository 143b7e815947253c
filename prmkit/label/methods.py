"""The labelling methods of `prmkit label`, one registered function each (see `label/registry.py`).

Each takes one chunk of (global index, trace) pairs and returns the labelled copies in order; the
inputs it declares come from the run (models loaded once per worker), its other keyword
parameters are `LabelConfig` fields of the same name. The label rules themselves are in
`label/rules.py`; the rollout engine in `label/rollouts.py`.
"""

from __future__ import annotations

from prmkit.errors import InputError
from prmkit.label.judge import consensus_traces, judge_traces
from prmkit.label.mc import mc_counts, mc_labels_from_counts
from prmkit.label.omega import omega_search, omega_trace
from prmkit.label.progress import progress_chunk
from prmkit.label.registry import LABELLERS, Labeller, labeller
from prmkit.label.scan import scan_chunk
from prmkit.label.verify import label_verify


@labeller("mc", needs=("sampler", "rollouts", "problems"))
def mc(items, *, sampler, rollouts, problems, batch_size, k, mode):
    """Math-Shepherd labels (arXiv 2312.08935): k rollouts from every step prefix; `mode` hard (any
    rollout correct) or soft (the fraction correct)."""
    counted = mc_counts(items, sampler, rollouts, problems, batch_size)
    return [mc_labels_from_counts(t, counts, cost, k, mode) for (_, t), (counts, cost) in zip(items, counted)]


@labeller("omega", needs=("sampler", "rollouts", "problems"))
def omega(items, *, sampler, rollouts, problems, batch_size, k):
    """OmegaPRM first-error labels (arXiv 2406.06592) by binary search over step prefixes."""
    found = omega_search(items, sampler, rollouts, problems, batch_size)
    return [omega_trace(t, fe, probes, cost, k) for (_, t), (fe, probes, cost) in zip(items, found)]


@labeller("scan", needs=("sampler", "rollouts", "problems", "self_confidence"))
def scan(items, *, sampler, rollouts, problems, self_confidence, batch_size, min_self_conf, scan_window,
         scan_robust):
    """SCAN self-denoising MC labels (arXiv 2509.16548): questions below `min_self_conf` are dropped."""
    return scan_chunk(items, sampler, rollouts, self_confidence or {}, problems, min_self_conf=min_self_conf,
                      window=scan_window, robust=scan_robust, batch_size=batch_size)


@labeller("verify", needs=("problems",))
def verify(items, *, problems, checker):
    """Tool labels: the gym checker, the GSM8K calculator annotations or sympy (`checker`)."""
    out = []
    for idx, t in items:
        out += label_verify([t], checker=checker, problems=problems, start_index=idx)
    return out


@labeller("judge", needs=("judge",))
def judge(items, *, judge):
    """LLM-as-a-judge first-error labels (arXiv 2501.07301)."""
    return judge_traces(items, judge.judge(items), judge.name)


@labeller("consensus", needs=("judge", "sampler", "rollouts", "problems"))
def consensus(items, *, judge, sampler, rollouts, problems, batch_size, k):
    """MC hard labels kept where the judge agrees on the first error (arXiv 2501.07301)."""
    verdicts = judge.judge(items)
    counted = mc_counts(items, sampler, rollouts, problems, batch_size)
    return consensus_traces(items, verdicts, counted, k, judge.name)


@labeller("progress", needs=("prover", "rollouts", "problems"))
def progress(items, *, prover, rollouts, problems, batch_size, eps, prover_bok):
    """PAV process advantages under a (Best-of-K) prover (arXiv 2410.08146) and GenPRM relative-progress
    labels with threshold `eps` (arXiv 2504.00891)."""
    return progress_chunk(items, prover, rollouts, problems, eps=eps, prover_bok=prover_bok, batch_size=batch_size)


def get_labeller(name: str) -> Labeller:
    """The registered method `name`, or an `InputError` naming the known ones."""
    if name not in LABELLERS:
        raise InputError(f"unknown method {name!r}; expected one of {', '.join(LABELLERS)}", field="method")
    return LABELLERS[name]
