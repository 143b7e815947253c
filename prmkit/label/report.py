"""`prmkit label-report`: compare label files against gold first errors (the gym's exact checker),
or, with `--reference OTHER_LABELS.jsonl`, against the first errors another label file predicts
(e.g. `prmkit label --method verify` labels on data without gold).

Definitions (also written into `label_report.json`):
- predicted first error of a labelled trace: the first step whose label is known (not None) and
  below `threshold` (0.5, fixed a priori; for hard labels any threshold in (0, 1) is the same),
  or -1 when there is none.
- first_error_agreement: fraction of labelled traces with a gold first error whose predicted first
  error equals the gold one (-1 = "no error" on both sides).  `coverage` = labelled / all traces.
- step precision/recall of "bad": a step is gold-bad iff its index >= the gold first error (the
  prefix is already wrong); predicted-bad iff its label is known and below the threshold.
- ece: expected calibration error of the known label values read as P(prefix good) against gold.
- cost: rollouts and policy tokens per input trace (dropped traces count with what they spent).
- reference: with `--reference`, a trace's "gold" first error is the reference file's predicted first
  error of the same trace (same problem id, prompt and steps; None where the reference did not
  label it), replacing the traces' own `first_error`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prmkit.errors import InputError
from prmkit.evaluate.metrics import ece
from prmkit.report import png_to_img, table_html, write_page
from prmkit.schema import Trace, atomic_write_text, read_traces

DEFINITION = ("predicted first error = first step whose known label < threshold (-1 if none); agreement = "
              "fraction of labelled traces with gold whose predicted first error equals the gold first error "
              "(-1 = no error); step 'bad' gold = index >= gold first error")


@dataclass
class LabelReportConfig:
    """Compare label files with gold first errors: agreement, precision/recall of bad steps, calibration, cost."""

    labels: list[str] = field(default_factory=list)
    """labels.jsonl files or `prmkit label` run directories (repeat the option)"""
    names: list[str] = field(default_factory=list)
    """display names, one per --labels (default: the labels' method)"""
    out: str = "runs/label-report"
    """directory for label_report.json, label_report.png and label_report.html"""
    threshold: float = 0.5
    """a step is predicted bad when its label is below this (fixed, not fitted)"""
    reference: str = ""
    """labels file or run dir whose predicted first errors stand in for gold (e.g. verify labels; empty: gold)"""


def predicted_first_error(values: Sequence[float | None], threshold: float = 0.5) -> int:
    """First index with a known value below `threshold`, else -1 (unknown values are skipped)."""
    for i, v in enumerate(values):
        if v is not None and v < threshold:
            return i
    return -1


def _cost(t: Trace) -> tuple[int, int]:
    if t.labels is not None:
        return t.labels.rollouts, t.labels.policy_tokens
    info = t.meta.get("label") if isinstance(t.meta.get("label"), dict) else {}
    return int(info.get("rollouts", 0)), int(info.get("policy_tokens", 0))


def evaluate_labels(traces: Sequence[Trace], threshold: float = 0.5) -> dict:
    """Metrics of one labelled trace set against the traces' gold `first_error`."""
    n = len(traces)
    labelled = [t for t in traces if t.labels is not None]
    judged = [t for t in labelled if t.first_error is not None]
    agree = sum(predicted_first_error(t.labels.values, threshold) == t.first_error for t in judged)  # type: ignore[union-attr]
    tp = fp = fn = 0
    probs, gold_good = [], []
    for t in judged:
        for i, v in enumerate(t.labels.values):  # type: ignore[union-attr]
            if v is None:
                continue
            bad = t.first_error != -1 and i >= t.first_error  # type: ignore[operator]
            pred_bad = v < threshold
            tp += bad and pred_bad
            fp += pred_bad and not bad
            fn += bad and not pred_bad
            probs.append(float(v))
            gold_good.append(0.0 if bad else 1.0)
    rollouts = sum(_cost(t)[0] for t in traces)
    tokens = sum(_cost(t)[1] for t in traces)
    method = next((t.labels.method for t in labelled), "")
    return {
        "method": method, "traces": n, "labelled": len(labelled), "coverage": len(labelled) / n if n else 0.0,
        "with_gold": len(judged),
        "first_error_agreement": agree / len(judged) if judged else float("nan"),
        "bad_precision": tp / (tp + fp) if tp + fp else float("nan"),
        "bad_recall": tp / (tp + fn) if tp + fn else float("nan"),
        "ece": ece(probs, gold_good) if probs else float("nan"),
        "rollouts_per_trace": rollouts / n if n else 0.0,
        "policy_tokens_per_trace": tokens / n if n else 0.0,
        "threshold": threshold,
    }


def _labels_path(p: str) -> Path:
    path = Path(p)
    if path.is_dir():
        path = path / "labels.jsonl"
    if not path.exists():
        raise InputError(f"no labels file at {path}", field="labels")
    return path


def _trace_key(t: Trace) -> tuple:
    return t.problem_id, t.prompt, tuple(t.steps)


def with_reference(traces: Sequence[Trace], reference: Sequence[Trace], threshold: float = 0.5) -> list[Trace]:
    """Copies of `traces` whose `first_error` is the reference's predicted first error of the same trace
    (matched on problem id, prompt and steps, repeats in order); None where the reference has no label."""
    pending: dict[tuple, list[int | None]] = {}
    for r in reference:
        fe = predicted_first_error(r.labels.values, threshold) if r.labels is not None else None
        pending.setdefault(_trace_key(r), []).append(fe)
    out = []
    for t in traces:
        queue = pending.get(_trace_key(t)) or [None]
        out.append(dataclasses.replace(t, first_error=queue.pop(0) if len(queue) > 1 else queue[0]))
    return out


def report(paths: Sequence[str], names: Sequence[str] | None, out: Path, threshold: float = 0.5,
           reference: str = "") -> dict:
    if not paths:
        raise InputError("give at least one --labels file or run directory", field="labels")
    if names and len(names) != len(paths):
        raise InputError(f"{len(names)} --names for {len(paths)} --labels", field="names")
    ref = read_traces(_labels_path(reference)) if reference else None
    rows = {}
    for i, p in enumerate(paths):
        path = _labels_path(p)
        traces = read_traces(path)
        m = evaluate_labels(with_reference(traces, ref, threshold) if ref is not None else traces, threshold)
        cost_file = path.parent / "cost.json"
        if cost_file.exists():
            m["wall_s"] = json.loads(cost_file.read_text()).get("wall_s")
        m["file"] = str(path)
        name = names[i] if names else (m["method"] or path.parent.name)
        while name in rows:
            name += "'"
        rows[name] = m
    result = {"definition": DEFINITION, "reference": reference_note(reference, ref), "methods": rows}
    write_outputs(result, out)
    return result


def reference_note(reference: str, ref: Sequence[Trace] | None) -> str:
    if ref is None:
        return "gold first errors (each trace's own first_error)"
    method = next((t.labels.method for t in ref if t.labels is not None), "") or "unknown method"
    return (f"first errors predicted by {_labels_path(reference)} ({method} labels, threshold), "
            "standing in for gold")


def no_gold_note(methods: dict) -> str | None:
    """A sentence naming the files compared against nothing, or None when every file has some gold."""
    empty = [name for name, m in methods.items() if m["with_gold"] == 0]
    if not empty:
        return None
    return (f"no reference first errors for {', '.join(empty)}: its traces carry no gold first_error, so "
            "agreement, bad P/R and ECE are undefined (shown as -); pass --reference OTHER_LABELS.jsonl "
            "(e.g. labels from `prmkit label --method verify`) to compare against those labels")


TABLE_COLS = ("first_error_agreement", "coverage", "bad_precision", "bad_recall", "ece", "rollouts_per_trace",
              "policy_tokens_per_trace")


def table_rows(methods: dict) -> list[tuple]:
    return [(name, *[m.get(c) for c in TABLE_COLS]) for name, m in methods.items()]


def format_table(methods: dict) -> str:
    head = ("method", "agree", "cover", "bad P", "bad R", "ECE", "rollouts/tr", "tokens/tr")
    lines = ["  ".join(f"{h:>11}" for h in head)]
    for r in table_rows(methods):
        cells = [f"{r[0]:>11}"] + [(f"{'-':>11}" if math.isnan(v) else f"{v:>11.3f}") if isinstance(v, float)
                                   else f"{v!s:>11}" for v in r[1:6]]
        cells += [f"{r[6]:>11.1f}", f"{r[7]:>11.0f}"]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def plot(methods: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in methods.items():
        x, y = m["rollouts_per_trace"], m["first_error_agreement"]
        ax.scatter([x], [y], s=40)
        tag = name if m["coverage"] >= 1.0 else f"{name} (coverage {m['coverage']:.2f})"
        ax.annotate(tag, (x, y), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel("rollouts per trace")
    ax.set_ylabel("first-error agreement with gold")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title("step labels: agreement vs cost")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_outputs(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "label_report.json", json.dumps(result, indent=2) + "\n")
    png = plot(result["methods"], out / "label_report.png")
    header = ("method", "first-error agreement", "coverage", "bad precision", "bad recall", "ECE",
              "rollouts/trace", "policy tokens/trace")
    note = no_gold_note(result["methods"])
    write_page(out / "label_report.html", "Step labels vs reference", [
        ("Table", table_html(table_rows(result["methods"]), header) + f"<p>Reference: {result['reference']}.</p>"
         + (f"<p>{note}</p>" if note else "") + f"<p>{DEFINITION}</p>"),
        ("Agreement vs cost", png_to_img(png))])


def run(cfg: LabelReportConfig) -> dict:
    result = report(cfg.labels, cfg.names or None, Path(cfg.out), cfg.threshold, cfg.reference)
    print(f"reference: {result['reference']}")
    print(format_table(result["methods"]))
    note = no_gold_note(result["methods"])
    if note:
        print(note)
    print(f"wrote {Path(cfg.out) / 'label_report.json'}, label_report.png, label_report.html")
    return result
