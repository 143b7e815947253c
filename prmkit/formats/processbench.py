"""ProcessBench <-> Trace.

# format: Qwen/ProcessBench README / dataset card (one JSON array per split, e.g. gsm8k.json):
#   {"id": "gsm8k-0", "generator": "Qwen2-7B-Instruct", "problem": str, "steps": [str, ...],
#    "final_answer_correct": bool, "label": int}   # label: index of the first wrong step, -1 if none

`label` -> `first_error`, `final_answer_correct` -> `outcome` (1.0 / 0.0), `id` -> `problem_id`; the
gold step labels that follow from `label` go to `labels` (`gold_step_values`: steps before it right,
step `label` wrong, later steps unknown; -1: every step right);
`id`, `generator` and any other field are kept in `meta["processbench"]`, so record -> Trace -> record
is the identity.
"""

from __future__ import annotations

from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.formats._fields import check_trace, extra_fields, get_field, map_records
from prmkit.schema import StepLabels, Trace

NAME = "processbench"
FIELDS = ("id", "generator", "problem", "steps", "final_answer_correct", "label")


def record_to_trace(record: dict[str, Any], *, line: int | None = None) -> Trace:
    """One ProcessBench sample as a Trace."""
    sample_id = get_field(record, "id", str, "a string", line=line)
    generator = get_field(record, "generator", str, "a string", line=line)
    problem = get_field(record, "problem", str, "a string", line=line)
    steps = get_field(record, "steps", list, "a list of step strings", line=line)
    correct = get_field(record, "final_answer_correct", bool, "true or false", line=line)
    label = get_field(record, "label", int, "the index of the first wrong step, or -1", line=line)
    if not steps:
        raise InputError("expected at least one step, got an empty list", line=line, field="steps")
    for i, step in enumerate(steps):
        if not isinstance(step, str):
            raise InputError(f"expected a string, got {type(step).__name__}", line=line, field=f"steps[{i}]")
    if not -1 <= label < len(steps):
        raise InputError(f"expected -1 or a step index < {len(steps)}, got {label}", line=line, field="label")
    meta: dict[str, Any] = {"id": sample_id, "generator": generator}
    extra = extra_fields(record, FIELDS)
    if extra:
        meta["extra"] = extra
    return Trace(problem_id=sample_id, prompt=problem, steps=list(steps), outcome=1.0 if correct else 0.0,
                 first_error=label, labels=StepLabels(gold_step_values(label, len(steps)), method=NAME),
                 meta={NAME: meta})


def gold_step_values(label: int, num_steps: int) -> list[float | None]:
    """Step labels implied by ProcessBench's `label` (the index of the earliest wrong step, -1 if
    none): 1.0 before it, 0.0 at it, None (unknown) after it."""
    if label == -1:
        return [1.0] * num_steps
    return [1.0] * label + [0.0] + [None] * (num_steps - label - 1)


def first_error_from_labels(trace: Trace) -> int | None:
    """The first step labelled exactly 0.0 when every step before it is labelled exactly 1.0; -1 when
    every step is 1.0; None when a soft or unknown label comes first (nothing is thresholded)."""
    if trace.labels is None:
        return None
    for k, v in enumerate(trace.labels.values):
        if v == 0.0:
            return k
        if v != 1.0:
            return None
    return -1


def trace_to_record(trace: Trace, *, line: int | None = None, generator: str | None = None) -> dict[str, Any]:
    """A ProcessBench sample; the trace needs a graded `outcome` and a known first error: its
    `first_error`, else the one its hard step labels give (`first_error_from_labels`).
    `generator` defaults to the kept one, else "unknown"."""
    check_trace(trace, line)
    label = trace.first_error if trace.first_error is not None else first_error_from_labels(trace)
    if label is None:
        raise InputError("ProcessBench needs the first wrong step (-1 if none); this trace's is unknown "
                         "(no first_error, and no hard 0/1 step labels that decide it)", line=line,
                         field="first_error")
    if trace.outcome not in (0.0, 1.0):
        raise InputError(f"ProcessBench needs a graded outcome of 0 or 1, got {trace.outcome!r}", line=line,
                         field="outcome")
    kept = trace.meta.get(NAME, {})
    record = {
        "id": kept.get("id", trace.problem_id),
        "generator": generator if generator is not None else kept.get("generator", "unknown"),
        "problem": trace.prompt,
        "steps": list(trace.steps),
        "final_answer_correct": trace.outcome == 1.0,
        "label": label,
    }
    record.update(kept.get("extra", {}))
    return record


def records_to_traces(records: Sequence[dict[str, Any]], *, lines: Sequence[int] | None = None) -> list[Trace]:
    return map_records(record_to_trace, records, lines)


def traces_to_records(traces: Sequence[Trace], *, lines: Sequence[int] | None = None,
                      generator: str | None = None) -> list[dict[str, Any]]:
    return map_records(trace_to_record, traces, lines, generator=generator)
