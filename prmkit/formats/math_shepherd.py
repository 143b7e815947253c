"""Math-Shepherd <-> Trace.

# format: peiyi9979/Math-Shepherd dataset card (and TRL's examples/datasets/math_shepherd.py):
#   {"input": "<question> Step 1: ... ки\nStep 2: ... ки", "label": <input with each "ки" replaced
#    by "+" (good step) or "-" (bad step)>, "task": "GSM8K" | "MATH"}

The prompt ends where the first "Step 1:" (else "step 1:", else the last "?" before the first tag)
begins. Steps are the text between tags with surrounding whitespace stripped; that whitespace, the
text after the last tag and `task` are kept in `meta["math_shepherd"]`, so record -> Trace -> record
is the identity. A tag inside the question (a known annotation slip in the data) stays in the prompt
and its sign is kept too. Labels: "+" -> 1.0, "-" -> 0.0.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.formats._fields import check_trace, extra_fields, get_field, map_records, prompt_id
from prmkit.schema import StepLabels, Trace

NAME = "math_shepherd"
TAG = "ки"
SIGNS = {"+": 1.0, "-": 0.0}
MARKERS = ("Step 1:", "step 1:")
_ANSWER = re.compile(r"The answer is:?\s*(.+?)\s*\Z", re.DOTALL)


def record_to_trace(record: dict[str, Any], *, line: int | None = None, problem_id: str | None = None) -> Trace:
    """One Math-Shepherd row as a Trace; `problem_id` defaults to a hash of the question."""
    text = get_field(record, "input", str, "the question and steps, each step ending in ' ки'", line=line)
    label = get_field(record, "label", str, "the input with each 'ки' replaced by '+' or '-'", line=line)
    signs = _read_signs(text, label, line)
    start = _steps_start(text, line)
    prompt_region, pieces = text[:start], text[start:].split(TAG)
    n_prompt_tags = prompt_region.count(TAG)
    bodies, lead, trail = [], [], []
    for piece in pieces[:-1]:
        body = piece.strip()
        i = len(piece) - len(piece.lstrip())
        bodies.append(body)
        lead.append(piece[:i])
        trail.append(piece[i + len(body):])
    if not bodies:
        raise InputError(f"expected at least one step ending in '{TAG}' after the question", line=line,
                         field="input")
    prompt = prompt_region.rstrip()
    meta = {
        "layout": {"prompt_sep": prompt_region[len(prompt):], "lead": lead, "trail": trail, "tail": pieces[-1]},
        "prompt_signs": signs[:n_prompt_tags],
    }
    if "task" in record:
        meta["task"] = record["task"]
    extra = extra_fields(record, ("input", "label", "task"))
    if extra:
        meta["extra"] = extra
    answer = _ANSWER.search(bodies[-1])
    return Trace(
        problem_id=problem_id if problem_id is not None else prompt_id(NAME, prompt),
        prompt=prompt,
        steps=bodies,
        final_answer=answer.group(1) if answer else None,
        labels=StepLabels(values=[SIGNS[s] for s in signs[n_prompt_tags:]], method=NAME),
        meta={NAME: meta},
    )


def _read_signs(text: str, label: str, line: int | None) -> list[str]:
    """The '+'/'-' standing in `label` where `text` has each tag; the rest must match exactly."""
    pieces, signs, pos = text.split(TAG), [], 0
    if len(pieces) == 1:
        raise InputError(f"expected steps ending in the tag '{TAG}', found none", line=line, field="input")
    for piece in pieces[:-1]:
        end = pos + len(piece)
        if label[pos:end] != piece or end >= len(label) or label[end] not in SIGNS:
            raise InputError(f"expected the input with each '{TAG}' replaced by '+' or '-'; "
                             f"they differ near character {pos}", line=line, field="label")
        signs.append(label[end])
        pos = end + 1
    if label[pos:] != pieces[-1]:
        raise InputError(f"expected the input with each '{TAG}' replaced by '+' or '-'; "
                         f"they differ after the last tag", line=line, field="label")
    return signs


def _steps_start(text: str, line: int | None) -> int:
    """Where the first step begins: the first "Step 1:" or "step 1:", else after the last "?"
    before the first tag (as TRL's conversion script does)."""
    for marker in MARKERS:
        k = text.find(marker)
        if k >= 0:
            return k
    k = text.rfind("?", 0, text.find(TAG))
    if k < 0:
        raise InputError("expected the steps to start with 'Step 1:' (or the question to end in '?')",
                         line=line, field="input")
    return k + 1


def trace_to_record(trace: Trace, *, line: int | None = None, task: str | None = None,
                    threshold: float | None = None) -> dict[str, Any]:
    """A Math-Shepherd row. Every step needs a label; soft labels need `threshold` (label >= threshold
    is '+'). `task` defaults to the one kept from Math-Shepherd (omitted when unknown)."""
    check_trace(trace, line)
    kept = trace.meta.get(NAME, {})
    signs = _signs(trace, threshold, line)
    prompt_signs = list(kept.get("prompt_signs", []))
    if trace.prompt.count(TAG) != len(prompt_signs):
        raise InputError(f"the prompt holds {trace.prompt.count(TAG)} '{TAG}' tags with no label",
                         line=line, field="prompt")
    for i, step in enumerate(trace.steps):
        if TAG in step:
            raise InputError(f"a step cannot contain the step tag '{TAG}'", line=line, field=f"steps[{i}]")
    layout = kept.get("layout")
    n = trace.num_steps
    if not layout or len(layout["lead"]) != n or len(layout["trail"]) != n:
        layout = {"prompt_sep": " ", "lead": [""] + ["\n"] * (n - 1), "trail": [" "] * n, "tail": ""}

    def render(step_marks: list[str], prompt_marks: list[str]) -> str:
        prompt_pieces = trace.prompt.split(TAG)
        prompt = "".join(p + m for p, m in zip(prompt_pieces, prompt_marks)) + prompt_pieces[-1]
        body = "".join(lead + step + trail + mark for lead, step, trail, mark
                       in zip(layout["lead"], trace.steps, layout["trail"], step_marks))
        return prompt + layout["prompt_sep"] + body + layout["tail"]

    record: dict[str, Any] = {"input": render([TAG] * n, [TAG] * len(prompt_signs)),
                              "label": render(signs, prompt_signs)}
    task = task if task is not None else kept.get("task")
    if task is not None:
        record["task"] = task
    record.update(kept.get("extra", {}))
    return record


def _signs(trace: Trace, threshold: float | None, line: int | None) -> list[str]:
    if trace.labels is None:
        raise InputError("Math-Shepherd needs a '+' or '-' per step; this trace has no labels", line=line,
                         field="labels")
    out = []
    for i, v in enumerate(trace.labels.values):
        if v is None:
            raise InputError("Math-Shepherd labels cannot be unknown (null)", line=line,
                             field=f"labels.values[{i}]")
        if threshold is not None:
            out.append("+" if v >= threshold else "-")
        elif v in (0.0, 1.0):
            out.append("+" if v == 1.0 else "-")
        else:
            raise InputError(f"expected a label of 0 or 1 (pass threshold= for soft labels), got {v!r}",
                             line=line, field=f"labels.values[{i}]")
    return out


def records_to_traces(records: Sequence[dict[str, Any]], *, lines: Sequence[int] | None = None) -> list[Trace]:
    return map_records(record_to_trace, records, lines)


def traces_to_records(traces: Sequence[Trace], *, lines: Sequence[int] | None = None, task: str | None = None,
                      threshold: float | None = None) -> list[dict[str, Any]]:
    return map_records(trace_to_record, traces, lines, task=task, threshold=threshold)
