"""PRM800K <-> Trace.

# format: openai/prm800k README, "Data": one labeled solution per JSONL line,
#   {"labeler", "timestamp", "generation", "is_quality_control_question", "is_initial_screening_question",
#    "question": {"problem", "ground_truth_solution", "ground_truth_answer", "pre_generated_steps", ...},
#    "label": {"steps": [{"completions": [{"text", "rating": -1 | 0 | 1 | null, "flagged"}, ...],
#                         "human_completion": null | {"text", ...}, "chosen_completion": int | null}, ...],
#              "total_time", "finish_reason": "found_error" | "solution" | "bad_problem" | "give_up"}}

The Trace follows the labeled trajectory (README: `human_completion if chosen_completion is None else
completions[chosen_completion]`). A step with neither a chosen nor a human completion ends it: in
phase 2 that is where the labeler found the error; its completions are the pre-generated step
(equal to `question.pre_generated_steps[i]`, rated -1) and alternatives, and the pre-generated step
is kept as the last step, so `first_error` is its index. A step with `completions: null` ends the
path before it. Ratings are kept verbatim in `labels.ratings`; `labels.values` maps -1 -> 0.0,
+1 -> 1.0 and the neutral 0 by the explicit `neutral=` option. `first_error` is the first -1 step on
the path, else -1 when `finish_reason` is "solution" (every step stands and the answer is right),
else None. `finish_reason` is kept in `meta["prm800k"]`, and the whole original record in
`meta["prm800k"]["record"]`, so record -> Trace -> record is the identity.

`trl_rows` is the other export: TRL's `examples/datasets/prm800k.py` mapping, one stepwise row per
rated alternative completion plus one for the path (see its docstring).
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
    """(text, rating, is_human) for each step of the labeled trajectory; checks the fields it reads.

    A step with a chosen completion or a human completion continues the path. A step with neither
    ends it: in phase 2 that is the step where the labeler found the error, whose completions hold
    the pre-generated step (the one equal to `question.pre_generated_steps[i]`, rated -1) followed by
    rated alternatives; the pre-generated step is kept as the path's last step (as is the only
    completion of such a step). `completions: null` ends the path there (nothing kept).
    """
    label = get_field(record, "label", dict, "an object with 'steps'", line=line)
    steps = get_field(label, "steps", list, "a list of step objects", line=line, prefix="label.")
    pre = _pre_generated(record)
    path: list[tuple[str, int | None, bool]] = []
    for i, step in enumerate(steps):
        where = f"label.steps[{i}]."
        completions = _completions(step, where, line)
        chosen = get_field(step, "chosen_completion", (int, type(None)), "a completion index or null",
                           line=line, prefix=where)
        human = get_field(step, "human_completion", (str, dict, type(None)),
                          "null, a string or an object with 'text'", line=line, prefix=where)
        if chosen is not None:
            if completions is None or not 0 <= chosen < len(completions):
                n = 0 if completions is None else len(completions)
                raise InputError(f"expected an index < {n}, got {chosen}", line=line,
                                 field=f"{where}chosen_completion")
            path.append((completions[chosen]["text"], completions[chosen]["rating"], False))
        elif human is not None:
            path.append(_human_step(human, where, line))
        else:
            k = _stop_step(completions or [], pre[i] if i < len(pre) else None)
            if k is not None:
                path.append((completions[k]["text"], completions[k]["rating"], False))  # type: ignore[index]
            break
    return path


def _pre_generated(record: dict[str, Any]) -> list[Any]:
    question = record.get("question")
    steps = question.get("pre_generated_steps") if isinstance(question, dict) else None
    return steps if isinstance(steps, list) else []


def _completions(step: Any, where: str, line: int | None) -> list[dict[str, Any]] | None:
    """The step's checked completions, or None when the file has `completions: null`."""
    completions = get_field(step, "completions", (list, type(None)), "a list of completion objects or null",
                            line=line, prefix=where)
    for j, c in enumerate(completions or []):
        get_field(c, "text", str, "a string", line=line, prefix=f"{where}completions[{j}].")
        rating = get_field(c, "rating", (int, type(None)), "-1, 0, 1 or null", line=line,
                           prefix=f"{where}completions[{j}].")
        if rating not in (-1, 0, 1, None):
            raise InputError(f"expected -1, 0, 1 or null, got {rating!r}", line=line,
                             field=f"{where}completions[{j}].rating")
    return completions


def _human_step(human: str | dict[str, Any], where: str, line: int | None) -> tuple[str, int | None, bool]:
    if isinstance(human, dict):
        text = get_field(human, "text", str, "a string", line=line, prefix=f"{where}human_completion.")
        return text, human.get("rating"), True
    return human, None, True


def _stop_step(completions: list[dict[str, Any]], pre_generated: Any) -> int | None:
    """Index of the completion kept at the step that ends the path: in phase 2 (a pre-generated
    step exists) the completion equal to it, else `completions[0]` when rated -1 (README: the
    pre-generated step comes first); otherwise the only completion; None keeps nothing."""
    if isinstance(pre_generated, str):
        for k, c in enumerate(completions):
            if c["text"] == pre_generated:
                return k
        if completions and completions[0]["rating"] == -1:
            return 0
    return 0 if len(completions) == 1 else None


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
        raise InputError("expected at least one labeled step on the chosen trajectory, got none (the path "
                         "ends at its first step; `prmkit convert --skip-empty-paths` leaves such lines out)",
                         line=line, field="label.steps")
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
        meta={NAME: {"record": copy.deepcopy(record), "finish_reason": finish}},
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


# ---------------------------------------------------------------------------------------------
# TRL's own PRM800K mapping: one row per alternative completion


def trl_rows(record: dict[str, Any], *, line: int | None = None, neutral: str = "unknown") -> list[dict[str, Any]]:
    """TRL stepwise rows for one PRM800K line, as TRL's `examples/datasets/prm800k.py` builds them.

    Walking the labeled path, every completion of a step other than the chosen one is a terminal
    row: the path so far plus that completion, labelled by its rating (so the phase-2 step rated -1
    is a terminal row). After the last step the path itself is one more row (with no steps when the
    path is empty, as TRL writes it). A step's label is `rating == 1`; a 0 rating needs the explicit
    `neutral=` choice ("negative": False, TRL's mapping; "positive": True); a null rating is False
    and a human completion True, as in TRL's script.
    """
    if neutral not in ("positive", "negative"):
        raise InputError(f"TRL rows need booleans: pass neutral='negative' (TRL's script: only +1 is a good "
                         f"step) or 'positive' for 0 ratings, got {neutral!r}", field="neutral")
    chosen_path(record, line)  # checks every field read below
    prompt = get_field(get_field(record, "question", dict, "an object with 'problem'", line=line),
                       "problem", str, "a string", line=line, prefix="question.")

    def good(rating: int | None) -> bool:
        return rating == 1 or (rating == 0 and neutral == "positive")

    rows: list[dict[str, Any]] = []
    texts: list[str] = []
    labels: list[bool] = []
    for step in record["label"]["steps"]:
        chosen, human = step["chosen_completion"], step["human_completion"]
        if step["completions"] is None and human is None and chosen is None:
            break
        for k, c in enumerate(step["completions"] or []):
            if k != chosen:
                rows.append({"prompt": prompt, "completions": texts + [c["text"]],
                             "labels": labels + [good(c["rating"])]})
        if chosen is not None:
            picked = step["completions"][chosen]
            texts, labels = texts + [picked["text"]], labels + [good(picked["rating"])]
        elif human is not None:
            texts, labels = texts + [human["text"] if isinstance(human, dict) else human], labels + [True]
        else:
            break
    rows.append({"prompt": prompt, "completions": texts, "labels": labels})
    return rows


def records_to_trl_rows(records: Sequence[dict[str, Any]], *, lines: Sequence[int] | None = None,
                        neutral: str = "unknown") -> list[dict[str, Any]]:
    """`trl_rows` of every line, concatenated in file order."""
    return [row for rows in map_records(trl_rows, records, lines, neutral=neutral) for row in rows]
