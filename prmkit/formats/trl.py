"""TRL stepwise supervision <-> Trace.

# format: huggingface TRL docs, "Dataset formats and types" -> "Stepwise supervision":
#   {"prompt": str, "completions": [str, ...], "labels": [bool, ...]}   (one label per step)

TRL documents boolean labels; soft labels (floats in [0, 1]) are kept as floats. The label type a
record came with is kept in `labels.meta["label_type"]` ("bool", "int" or "float"), so
record -> Trace -> record is the identity. Columns other than the three above go to `meta["trl"]`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.formats._fields import check_trace, extra_fields, get_field, map_records, prompt_id
from prmkit.schema import StepLabels, Trace

NAME = "trl"
COLUMNS = ("prompt", "completions", "labels")
LABEL_TYPES = ("auto", "bool", "float")


def record_to_trace(record: dict[str, Any], *, line: int | None = None, problem_id: str | None = None) -> Trace:
    """One TRL row as a Trace; `problem_id` defaults to a hash of the prompt (rows of one problem share it)."""
    prompt = get_field(record, "prompt", str, "a string", line=line)
    completions = get_field(record, "completions", list, "a list of step strings", line=line)
    labels = get_field(record, "labels", list, "a list of booleans (or floats in [0, 1])", line=line)
    if not completions:
        raise InputError("expected at least one step, got an empty list", line=line, field="completions")
    for i, step in enumerate(completions):
        if not isinstance(step, str):
            raise InputError(f"expected a string, got {type(step).__name__}", line=line, field=f"completions[{i}]")
    if len(labels) != len(completions):
        raise InputError(f"expected one label per step ({len(completions)}), got {len(labels)}", line=line,
                         field="labels")
    values, label_type = _parse_labels(labels, line)
    extra = extra_fields(record, COLUMNS)
    return Trace(
        problem_id=problem_id if problem_id is not None else prompt_id(NAME, prompt),
        prompt=prompt,
        steps=list(completions),
        labels=StepLabels(values=values, method=NAME, meta={"label_type": label_type}),
        meta={NAME: {"extra": extra}} if extra else {},
    )


def _parse_labels(labels: list[Any], line: int | None) -> tuple[list[float], str]:
    """Labels as floats, plus the type they were written in: all bools, all ints, else floats."""
    if all(isinstance(v, bool) for v in labels):
        return [float(v) for v in labels], "bool"
    values = []
    for i, v in enumerate(labels):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise InputError(f"expected all booleans or all numbers in [0, 1], got {v!r}", line=line,
                             field=f"labels[{i}]")
        values.append(float(v))
    return values, "int" if all(isinstance(v, int) for v in labels) else "float"


TRAILING_UNKNOWN = ("refuse", "drop")


def trace_to_record(trace: Trace, *, line: int | None = None, label_type: str = "auto",
                    trailing_unknown: str = "refuse") -> dict[str, Any]:
    """A TRL row; every step needs a known label.

    `label_type`: "bool" or "float" force the type; "auto" writes the type the labels came with
    from TRL, else bools when every label is exactly 0 or 1 (TRL's documented type), else floats.
    `trailing_unknown="drop"` ends the row at its last known label when every later label is
    unknown (ProcessBench labels nothing after the first error); an unknown label before a known
    one is refused either way.
    """
    check_trace(trace, line)
    if trace.labels is None:
        raise InputError("TRL needs one label per step; this trace has no labels", line=line, field="labels")
    if trailing_unknown not in TRAILING_UNKNOWN:
        raise InputError(f"expected one of {TRAILING_UNKNOWN}, got {trailing_unknown!r}", field="trailing_unknown")
    values = trace.labels.values
    keep = len(values)
    if trailing_unknown == "drop":
        while keep > 1 and values[keep - 1] is None:
            keep -= 1
    for i, v in enumerate(values[:keep]):
        if v is None:
            hint = "" if trailing_unknown == "drop" else " (trailing_unknown='drop' ends the row before them)"
            raise InputError(f"TRL labels cannot be unknown (null){hint}", line=line, field=f"labels.values[{i}]")
    if keep < len(values):
        trace = replace(trace, steps=trace.steps[:keep], labels=replace(trace.labels, values=values[:keep]))
        values = values[:keep]
    kind = resolve_label_type(trace, label_type, line)
    if kind == "bool":
        labels: list[Any] = [v == 1.0 for v in values]
    elif kind == "int":
        labels = [int(v) for v in values]
    else:
        labels = [float(v) for v in values]
    record = {"prompt": trace.prompt, "completions": list(trace.steps), "labels": labels}
    record.update(trace.meta.get(NAME, {}).get("extra", {}))
    return record


def resolve_label_type(trace: Trace, label_type: str, line: int | None = None) -> str:
    """"bool", "int" or "float" for this trace's labels (see `trace_to_record`)."""
    if label_type not in LABEL_TYPES:
        raise InputError(f"expected one of {LABEL_TYPES}, got {label_type!r}", field="label_type")
    assert trace.labels is not None
    hard = all(v in (0.0, 1.0) for v in trace.labels.values)
    if label_type == "bool" and not hard:
        raise InputError("expected labels of exactly 0 or 1 for label_type='bool'", line=line,
                         field="labels.values")
    if label_type != "auto":
        return label_type
    kept = trace.labels.meta.get("label_type")
    if kept == "float" or (kept in ("bool", "int") and hard):
        return kept
    return "bool" if hard else "float"


def records_to_traces(records: Sequence[dict[str, Any]], *, lines: Sequence[int] | None = None) -> list[Trace]:
    return map_records(record_to_trace, records, lines)


def traces_to_records(traces: Sequence[Trace], *, lines: Sequence[int] | None = None,
                      label_type: str = "auto", trailing_unknown: str = "refuse") -> list[dict[str, Any]]:
    return map_records(trace_to_record, traces, lines, label_type=label_type, trailing_unknown=trailing_unknown)


def to_trl_dataset(traces: Sequence[Trace], *, label_type: str = "auto"):
    """A `datasets.Dataset` with TRL's stepwise columns: prompt string, completions list of strings,
    labels list of bool, or of float64 when any trace's labels are soft (Arrow needs one type)."""
    import datasets

    records = traces_to_records(traces, label_type=label_type)
    soft = any(resolve_label_type(t, label_type) != "bool" for t in traces)
    label_value = datasets.Value("float64" if soft else "bool")
    features = datasets.Features({
        "prompt": datasets.Value("string"),
        "completions": datasets.Sequence(datasets.Value("string")),
        "labels": datasets.Sequence(label_value),
    })
    columns = {
        "prompt": [r["prompt"] for r in records],
        "completions": [r["completions"] for r in records],
        "labels": [[float(v) for v in r["labels"]] if soft else r["labels"] for r in records],
    }
    return datasets.Dataset.from_dict(columns, features=features)

