"""`prmkit eval processbench`: first-error F1 with a threshold fitted on another split, step AUROC and ECE.

Protocol (Zheng et al. 2412.06559): the predicted first error is the first step whose
score is below τ; F1 is the harmonic mean of the accuracy on erroneous traces (exact first-error
match) and on correct traces. τ is fitted on a separate split (`fit_model_threshold`, stored in the
model's prmkit_rm.json by the trainers) and never on the reported traces (docs/methods.md).

Step-level AUROC / ECE use the steps whose gold label is known: steps before the gold first error
are good, the first erroneous step is bad, later steps are unlabelled (ProcessBench labels only the
earliest error).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from prmkit.config import save_config
from prmkit.errors import InputError
from prmkit.evaluate.diagnostics import min_on_last_share, right_answer_wrong_step
from prmkit.evaluate.metrics import auroc, ece, fit_threshold, predicted_first_error, processbench_f1
from prmkit.formats import processbench
from prmkit.gym.samples import gym_traces
from prmkit.prompting import record_format
from prmkit.reading import read_input_text
from prmkit.resolve import all_gym_prompts, check_file, parse_rm_spec
from prmkit.rewards.aggregate import aggregate
from prmkit.rewards.base import score_traces
from prmkit.schema import Trace, atomic_write_text, dumps_strict_json, iter_jsonl, read_traces, write_records


@dataclass
class EvalProcessBenchConfig:
    """ProcessBench-style evaluation of a reward model (F1 at a held-out threshold, step AUROC, ECE)."""

    out: str = "runs/eval-processbench"
    """run directory (processbench.json, scored.jsonl, config.json)"""
    model: str = ""
    """reward model (`prmkit.resolve`'s grammar): a dir or hub id, http(s)://host:port of `prmkit serve`, 'gym',
    'checker[:flip_rate]'; empty: the shipped gym PRM, on gym data only"""
    readout: str = ""
    """how to read an external PRM without prmkit_rm.json (trl, math-shepherd, qwen2.5-math-prm, rlhflow, ...)"""
    trust_remote_code: bool = False
    """run the model's own modeling code (needed by PRMs whose head is custom code, e.g. Qwen2.5-Math-PRM)"""
    data: str = ""
    """traces with gold first errors: prmkit JSONL, or a ProcessBench split file (JSON array, e.g. gsm8k.json); empty: gym --split"""
    split: str = "test"
    """gym split sampled when --data is empty"""
    num_problems: int = 300
    """gym problems sampled when --data is empty"""
    samples: int = 4
    """policy samples per gym problem"""
    threshold: float = -1.0
    """step-score threshold; -1 = the one stored with the model (or fitted on --fit-data)"""
    fit_data: str = ""
    """refit the threshold on these traces (a split you do not report) before evaluating"""
    seed: int = 1
    """sampling seed for gym traces"""
    batch_size: int = 64
    """traces per forward pass"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    dtype: str = "float32"
    """dtype of local models' weights (float32, bfloat16, float16)"""
    max_length: int = 0
    """most tokens per scored sequence (0 = the model's context); a longer trace is refused before any forward pass"""


def gold_step_labels(first_error: int, num_steps: int) -> list[tuple[int, int]]:
    """(step index, label) of the steps ProcessBench labels: 1 before the first error, 0 at it."""
    if first_error == -1:
        return [(k, 1) for k in range(num_steps)]
    return [(k, 1) for k in range(first_error)] + [(first_error, 0)]


def evaluate_scores(step_scores: Sequence[Sequence[float]], gold: Sequence[int], threshold: float,
                    outcomes: Sequence[float | None] | None = None) -> dict:
    """F1 / accuracies at `threshold`, step AUROC and ECE, and the "Lessons" diagnostics."""
    preds = [predicted_first_error(s, threshold) for s in step_scores]
    res = processbench_f1(preds, gold)
    probs, labels = [], []
    for s, g in zip(step_scores, gold):
        for k, y in gold_step_labels(g, len(s)):
            probs.append(min(1.0, max(0.0, s[k])))
            labels.append(y)
    out = {**res, "threshold": threshold, "traces": len(gold), "erroneous": sum(g != -1 for g in gold),
           "correct": sum(g == -1 for g in gold), "labelled_steps": len(labels)}
    out["step_auroc"] = auroc(probs, labels) if 0 < sum(labels) < len(labels) else float("nan")
    out["step_ece"] = ece(probs, labels)
    out["min_on_last_share"] = min_on_last_share(step_scores)
    if outcomes is not None:
        out.update(right_answer_wrong_step(preds, gold, outcomes))
    return out


def fit_model_threshold(rm, traces: Sequence[Trace], source: str = "") -> dict:
    """Fit τ maximising F1 on `traces` (a split not reported) and store it on `rm`; returns the fit record."""
    traces = require_gold(traces, source)
    scores = score_traces(rm, traces)
    tau, f1 = fit_threshold(scores, [t.first_error for t in traces])
    rm.threshold = tau
    return {"threshold": tau, "f1_on_fit_split": f1, "traces": len(traces), "source": source}


def require_gold(traces: Sequence[Trace], source: str = "") -> list[Trace]:
    for i, t in enumerate(traces):
        if t.first_error is None:
            raise InputError("expected a gold first error (-1 if none)", file=source or None, line=i + 1,
                             field="first_error")
    return list(traces)


def read_eval_traces(path: str) -> list[Trace]:
    """prmkit JSONL, or ProcessBench's layout (a JSON array per split, or JSONL of its records)."""
    p = Path(path)
    text = read_input_text(p)
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"expected a JSON array of ProcessBench records: {e.msg}", file=path, line=e.lineno) from None
        try:
            return processbench.records_to_traces(records, lines=list(range(1, len(records) + 1)))
        except InputError as e:
            raise InputError(str(e), file=path) from None
    first = next(iter_jsonl(p), (1, {}))[1]
    if "final_answer_correct" in first and "label" in first:
        return [processbench.record_to_trace(r, line=n) for n, r in iter_jsonl(p)]
    return read_traces(p)


def eval_traces(cfg) -> list[Trace]:
    if cfg.data:
        return require_gold(read_eval_traces(cfg.data), cfg.data)

    return gym_traces(cfg.split, cfg.num_problems, cfg.samples, cfg.seed, desc=f"sample {cfg.split}")


def write_scored(path: Path, traces: Sequence[Trace], scores: Sequence[Sequence[float]], rm) -> None:
    """Traces with `meta["rm"] = {step_scores, score, aggregation}` (the `prmkit score` output layout)."""
    from dataclasses import replace


    write_records(path, [replace(t, meta={**t.meta, "rm": {"step_scores": s, "score": aggregate(s, rm.aggregation),
                                                           "aggregation": rm.aggregation, "kind": rm.kind}})
                         for t, s in zip(traces, scores)])


def run(cfg: EvalProcessBenchConfig) -> dict:
    out = Path(cfg.out)
    # the data, the fit data and the model spec are read and checked before any model loads
    data = require_gold(read_eval_traces(check_file(cfg.data, "data", "traces with gold first errors")), cfg.data) \
        if cfg.data else None
    fit_traces = require_gold(read_eval_traces(check_file(cfg.fit_data, "fit_data", "traces with gold first errors")),
                              cfg.fit_data) if cfg.fit_data else None
    spec = parse_rm_spec(cfg.model, "model", data is None or all_gym_prompts(t.prompt for t in data))
    rm = spec.load("", cfg.device, cfg.readout, cfg.trust_remote_code, cfg.dtype,
                   **({"batch_size": cfg.batch_size} if spec.form in ("gym-prm", "local", "hub") else {}))
    if cfg.max_length and hasattr(rm, "max_length"):
        rm.max_length = cfg.max_length
    fit = None
    if fit_traces:
        fit = fit_model_threshold(rm, fit_traces, source=cfg.fit_data)
    tau = cfg.threshold if cfg.threshold >= 0 else rm.threshold
    if tau is None or (isinstance(tau, float) and math.isnan(tau)):
        raise InputError("no threshold: the model stores none; pass --threshold or --fit-data (a split you do "
                         "not report)", field="threshold")
    traces = data if data is not None else eval_traces(cfg)
    scores = score_traces(rm, traces)
    res = evaluate_scores(scores, [t.first_error for t in traces], tau, [t.outcome for t in traces])
    res.update({"model": cfg.model or "shipped gym PRM", "kind": rm.kind, "aggregation": rm.aggregation,
                "data": cfg.data or f"gym:{cfg.split}", "threshold_source": "--threshold" if cfg.threshold >= 0 else
                ("--fit-data" if fit else "stored with the model"), "threshold_fit": fit or rm.meta.get("threshold_fit")})
    save_config(out, cfg)

    record_format(out, rm)  # the format the model read the traces with (saved in its dir)
    write_scored(out / "scored.jsonl", traces, scores, rm)
    atomic_write_text(out / "processbench.json", dumps_strict_json(res))  # NaN (e.g. no AUROC) -> null
    print(f"ProcessBench F1 {res['f1']:.3f} (acc_error {res['acc_error']:.3f}, acc_correct {res['acc_correct']:.3f}; "
          f"τ={tau:.4f}, {res['traces']} traces); step AUROC {res['step_auroc']:.3f}, ECE {res['step_ece']:.3f}")
    return res
