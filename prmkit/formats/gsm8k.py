"""GSM8K reference solutions <-> Trace.

# format: openai/grade-school-math (GSM8K) JSONL: {"question": str, "answer": str}; the answer's
#   lines are the solution steps, with calculator annotations "<<48/2=24>>" inline, and its last
#   line is "#### <final answer>".

Steps are the non-blank lines up to and including the "####" line, verbatim (annotations
included): the "#### <answer>" line is the trace's last step, as a sampled trace keeps the line that
states its answer (the gym's "A:<n>", a GSM8K-style policy's "#### <n>"). The final answer is the
text after "####", stripped. A reference solution is right (`outcome` 1.0), but which step first
goes wrong is not a GSM8K notion, so `first_error` stays None. Blank lines, lines after the "####"
line and extra fields are kept in `meta["gsm8k"]`, so record -> Trace -> record is the identity.
"""

from __future__ import annotations

from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.formats._fields import check_trace, extra_fields, get_field, map_records, prompt_id
from prmkit.schema import Trace

NAME = "gsm8k"
FINAL = "####"


def record_to_trace(record: dict[str, Any], *, line: int | None = None, problem_id: str | None = None) -> Trace:
    """One GSM8K problem with its reference solution as a Trace (`problem_id` defaults to a hash of the question)."""
    question = get_field(record, "question", str, "a string", line=line)
    answer = get_field(record, "answer", str, "solution lines ending in a line '#### <answer>'", line=line)
    lines = answer.split("\n")
    k = next((i for i, text in enumerate(lines) if text.startswith(FINAL)), None)
    if k is None:
        raise InputError(f"expected a final line '{FINAL} <answer>', found none", line=line, field="answer")
    body, final_line, after = lines[:k], lines[k], lines[k + 1:]
    steps = [text for text in body if text.strip()]
    if not steps:
        raise InputError(f"expected at least one solution line before '{FINAL}'", line=line, field="answer")
    final = final_line[len(FINAL):].strip()
    steps.append(final_line)
    meta: dict[str, Any] = {}
    blank = [[i, text] for i, text in enumerate(body) if not text.strip()]
    if blank:
        meta["blank_lines"] = blank
    if after:
        meta["after"] = after
    extra = extra_fields(record, ("question", "answer"))
    if extra:
        meta["extra"] = extra
    return Trace(
        problem_id=problem_id if problem_id is not None else prompt_id(NAME, question),
        prompt=question,
        steps=steps,
        final_answer=final,
        outcome=1.0,
        meta={NAME: meta} if meta else {},
    )


def trace_to_record(trace: Trace, *, line: int | None = None) -> dict[str, Any]:
    """{"question", "answer"}: the steps one per line, ending in "#### <final_answer>" (the last
    step when it is that line, else appended)."""
    check_trace(trace, line)
    if trace.final_answer is None:
        raise InputError(f"GSM8K ends the answer with '{FINAL} <final answer>'; this trace has none",
                         line=line, field="final_answer")
    for i, step in enumerate(trace.steps):
        if "\n" in step or not step.strip():
            raise InputError("expected a single non-blank line per GSM8K step", line=line, field=f"steps[{i}]")
    kept = trace.meta.get(NAME, {})
    body = list(trace.steps)
    final_line = f"{FINAL} {trace.final_answer}"
    if body[-1].startswith(FINAL):
        last = body.pop()
        if last[len(FINAL):].strip() == trace.final_answer:  # else the final step is stale
            final_line = last
    blank = kept.get("blank_lines", [])
    if all(i < len(body) + len(blank) for i, _ in blank):  # else the kept layout is stale
        for i, text in blank:
            body.insert(i, text)
    record = {"question": trace.prompt, "answer": "\n".join(body + [final_line] + kept.get("after", []))}
    record.update(kept.get("extra", {}))
    return record


def records_to_traces(records: Sequence[dict[str, Any]], *, lines: Sequence[int] | None = None,
                      id_prefix: str = f"{NAME}-") -> list[Trace]:
    """Traces with ids `<id_prefix><i>`, i the record's 0-based position (line index)."""
    traces = map_records(record_to_trace, records, lines)
    for i, trace in enumerate(traces):
        trace.problem_id = f"{id_prefix}{i}"
    return traces


def traces_to_records(traces: Sequence[Trace], *, lines: Sequence[int] | None = None) -> list[dict[str, Any]]:
    return map_records(trace_to_record, traces, lines)
