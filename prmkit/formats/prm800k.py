"""PRM800K <-> Trace.

# format: openai/prm800k README, "Data": one labeled solution per JSONL line,
#   {"labeler", "timestamp", "generation", "is_quality_control_question", "is_initial_screening_question",
#    "question": {"problem", "ground_truth_solution", "ground_truth_answer", "pre_generated_steps", ...},
#    "label": {"steps": [{"completions": [{"text", "rating": -1 | 0 | 1 | null, "flagged"}, ...],
#                         "human_completion": null | {"text", ...}, "chosen_completion": int | null}, ...],
#              "total_time", "finish_reason": "found_error" | "solution" | "bad_problem" | "give_up"}}

The Trace follows the labeled trajectory (README: `human_completion if chosen_completion is None else
completions[chosen_completion]`). A step with neither a chosen nor a human completion ends it: it is
kept when it holds a single completion (phase 2's last, -1 rated step), else the path stops before
it. Ratings are kept verbatim in `labels.ratings`; `labels.values` maps -1 -> 0.0, +1 -> 1.0 and the
neutral 0 by the explicit `neutral=` option. The whole original record is kept in
`meta["prm800k"]["record"]`, so record -> Trace -> record is the identity.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.formats._fields import check_trace, get_field, map_records, prompt_id
from prmkit.schema import StepLabels, Trace

NAME = "prm800k"
NEUTRAL = {"unknown": None, "positive": 1.0, "negative": 0.0}  # value given to a rating of 0
HUMAN_STEP_VALUE = 1.0  # README: labelers wrote their own step only as a +1 step
_ANSWER = re.compile(r"#\s*Answer\s*\n(.*)\Z", re.DOTALL)


def chosen_path(record: dict[str, Any], line: int | None = None) -> list[tuple[str, int | None, bool]]:
    """(text, rating, is_human) for each step of the labeled trajectory; checks the fields it reads."""
    label = get_field(record, "label", dict, "an object with 'steps'", line=line)
    steps = get_field(label, "steps", list, "a list of step objects", line=line, prefix="label.")
    path = []
    for i, step in enumerate(steps):
        where = f"label.steps[{i}]."
        completions = get_field(step, "completions", list, "a list of completion objects", line=line,
                                prefix=where)
        for j, c in enumerate(completions):
            get_field(c, "text", str, "a string", line=line, prefix=f"{where}completions[{j}].")
            rating = get_field(c, "rating", (int, type(None)), "-1, 0, 1 or null", line=line,
                               prefix=f"{where}completions[{j}].")
            if rating not in (-1, 0, 1, None):
                raise InputError(f"expected -1, 0, 1 or null, got {rating!r}", line=line,
                                 field=f"{where}completions[{j}].rating")
        chosen = get_field(step, "chosen_completion", (int, type(None)), "a completion index or null",
                           line=line, prefix=where)
        human = get_field(step, "human_completion", (str, dict, type(None)),
                          "null, a string or an object with 'text'", line=line, prefix=where)
        if chosen is not None:
            if not 0 <= chosen < len(completions):
                raise InputError(f"expected an index < {len(completions)}, got {chosen}", line=line,
                                 field=f"{where}chosen_completion")
            path.append((completions[chosen]["text"], completions[chosen]["rating"], False))
        elif human is not None:
            if isinstance(human, dict):
                text = get_field(human, "text", str, "a string", line=line, prefix=f"{where}human_completion.")
                path.append((text, human.get("rating"), True))
            else:
                path.append((human, None, True))
        else:
            if len(completions) == 1:
                path.append((completions[0]["text"], completions[0]["rating"], False))
            break
    return path


def record_to_trace(record: dict[str, Any], *, line: int | None = None, neutral: str = "unknown",
                    problem_id: str | None = None) -> Trace:
    """One PRM800K line as a Trace of its labeled trajectory.

    `neutral` maps a 0 rating: "unknown" -> None (default), "positive" -> 1.0, "negative" -> 0.0.
    `problem_id` defaults to a hash of the problem text.
    """
    if neutral not in NEUTRAL:
        raise InputError(f"expected one of {sorted(NEUTRAL)}, got {neutral!r}", field="neutral")
    question = get_field(record, "question", dict, "an object with 'problem'", line=line)
    problem = get_field(question, "problem", str, "a string", line=line, prefix="question.")
    path = chosen_path(record, line)
    if not path:
        raise InputError("expected at least one labeled step on the chosen trajectory, got none", line=line,
                         field="label.steps")
    finish = record["label"].get("finish_reason")
    ratings = [rating for _, rating, _ in path]
    values = [HUMAN_STEP_VALUE if human and rating is None else _value(rating, neutral)
              for _, rating, human in path]
    if -1 in ratings:
        first_error: int | None = ratings.index(-1)
    else:
        first_error = -1 if finish == "solution" else None
    answer = _ANSWER.search(path[-1][0])
    return Trace(
        problem_id=problem_id if problem_id is not None else prompt_id(NAME, problem),
        prompt=problem,
        steps=[text for text, _, _ in path],
        final_answer=answer.group(1).strip() if answer else None,
        outcome=1.0 if finish == "solution" else None,  # README: "concluded in the correct answer"
        first_error=first_error,
        labels=StepLabels(values=values, method=NAME, ratings=ratings, meta={"neutral": neutral}),
        meta={NAME: {"record": copy.deepcopy(record)}},
    )


def _value(rating: int | None, neutral: str) -> float | None:
    if rating is None:
        return None
    return {-1: 0.0, 1: 1.0}.get(rating, NEUTRAL[neutral])


def trace_to_record(trace: Trace, *, line: int | None = None) -> dict[str, Any]:
    """The PRM800K line: the kept original when the trace's prompt, steps and ratings still match it,
    else a record rebuilt around the trace (one completion per step, chosen; other kept fields reused)."""
    check_trace(trace, line)
    kept = trace.meta.get(NAME, {}).get("record")
    ratings = _ratings(trace, line)
    if kept is not None and _unchanged(kept, trace, ratings):
        return copy.deepcopy(kept)
    record = copy.deepcopy(kept) if kept is not None else {
        "labeler": None, "timestamp": None, "generation": None, "is_quality_control_question": False,
        "is_initial_screening_question": False, "question": {"ground_truth_answer": None},
        "label": {"total_time": None, "finish_reason": None}}
    record["question"]["problem"] = trace.prompt
    label = record["label"]
    label["steps"] = [{"completions": [{"text": text, "rating": rating, "flagged": None}],
                       "human_completion": None, "chosen_completion": 0}
                      for text, rating in zip(trace.steps, ratings)]
    if -1 in ratings:
        label["finish_reason"] = "found_error"
    elif trace.outcome == 1.0:
        label["finish_reason"] = "solution"
    return record


def _unchanged(kept: dict[str, Any], trace: Trace, ratings: list[int | None]) -> bool:
    try:
        path = chosen_path(kept)
        problem = kept["question"]["problem"]
    except (InputError, KeyError, TypeError):
        return False
    return (problem == trace.prompt and [text for text, _, _ in path] == trace.steps
            and [rating for _, rating, _ in path] == ratings)


def _ratings(trace: Trace, line: int | None) -> list[int | None]:
    """The trace's ratings, or ones read off hard labels (1.0 -> 1, 0.0 -> -1, None -> null)."""
    if trace.labels is None:
        return [None] * trace.num_steps
    if trace.labels.ratings is not None:
        return list(trace.labels.ratings)
    out: list[int | None] = []
    for i, v in enumerate(trace.labels.values):
        if v not in (None, 0.0, 1.0):
            raise InputError(f"PRM800K ratings are -1, 0 or 1; cannot write the soft label {v!r}", line=line,
                             field=f"labels.values[{i}]")
        out.append(None if v is None else (1 if v == 1.0 else -1))
    return out


def records_to_traces(records: Sequence[dict[str, Any]], *, lines: Sequence[int] | None = None,
                      neutral: str = "unknown") -> list[Trace]:
    return map_records(record_to_trace, records, lines, neutral=neutral)


def traces_to_records(traces: Sequence[Trace], *, lines: Sequence[int] | None = None) -> list[dict[str, Any]]:
    return map_records(trace_to_record, traces, lines)
