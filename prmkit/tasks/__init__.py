"""Problem sets and outcome graders behind one interface.

A grader turns a solution's text (or its final-answer string) into a graded outcome:

    grader = get_grader("gsm8k")
    grader.extract_answer(text) -> str | None     # the final answer written in a solution
    grader.is_correct(predicted, reference) -> bool
    grader.equivalent(a, b) -> bool               # optional: two final answers are one answer (votes)

A task with step gold and its own step definition (the gym) adds, optionally:

    grader.make_trace(problem, text, meta) -> Trace   # the graded trace, split by the task's own steps
    grader.first_error(problem, steps) -> int         # gold index of the first wrong step (-1 none)

and callers go through `grade`, `graded_trace`, `gold_first_error` and `has_own_steps` below, so
none of them names a task. A grader is registered in `GRADERS` by a "module:attribute" string that
is imported on first use (`importlib`), which is how the gym (a layer above this package,
docs/architecture.md "Layers") registers its grader without this package importing it.
"""

from __future__ import annotations

import importlib
from typing import Callable, Protocol

from prmkit.errors import InputError
from prmkit.schema import Problem, Trace
from prmkit.steps import split_solution


class Grader(Protocol):
    name: str

    def extract_answer(self, text: str) -> str | None: ...

    def is_correct(self, predicted: str | None, reference: str) -> bool: ...


# task name -> "module:attribute"; imported on first use so the core stays light
GRADERS: dict[str, str] = {
    "gym": "prmkit.gym.task:GymGrader",
    "gsm8k": "prmkit.tasks.gsm8k:GSM8KGrader",
    "math": "prmkit.tasks.math:MathGrader",
    "math-boxed": "prmkit.tasks.math:BoxedMathGrader",  # MATH without the unboxed-answer fallback
}


def get_grader(task: str) -> Grader:
    if task not in GRADERS:
        raise InputError(f"unknown task {task!r}; expected one of {sorted(GRADERS)}", field="task")
    module, attr = GRADERS[task].split(":")
    return getattr(importlib.import_module(module), attr)()


def answer_equivalence(task: str) -> Callable[[str, str], bool] | None:
    """The task's answer equivalence for grouping votes (`grader.equivalent`), or None = exact strings.

    math: math-verify equivalence; gsm8k: equal numbers after normalisation; gym: None (its
    answers are canonical integers already, so votes stay exactly as before)."""
    return getattr(get_grader(task), "equivalent", None)


def grade(problem: Problem, text: str) -> tuple[str | None, bool, int | None]:
    """(answer, correct, gold first error or None) of a solution's text under the problem's task: the
    task's own `grade` where it has one (the gym: exact first error), else its answer and outcome."""
    grader = get_grader(problem.task)
    own = getattr(grader, "grade", None)
    if own is not None:
        return own(problem, text)
    answer = grader.extract_answer(text)
    return answer, bool(grader.is_correct(answer, problem.answer)), None


def has_own_steps(task: str) -> bool:
    """Whether the task splits a solution into steps itself (the gym: its lines), so a sampler's steps
    and a `--step-split` mode do not apply to it."""
    return hasattr(get_grader(task), "make_trace")


def graded_trace(problem: Problem, text: str, steps: list[str] | None = None, meta: dict | None = None,
                 step_split: str = "") -> Trace:
    """The graded `Trace` of one solution. A task with its own steps builds it itself (gym: gold first
    error, `well_formed`); otherwise the steps are `text` split by the `step_split` mode
    (`prmkit.steps.split_solution`) when given, else `steps`, else the whole text as one step."""
    grader = get_grader(problem.task)
    own = getattr(grader, "make_trace", None)
    if own is not None:
        return own(problem, text, meta=meta)
    if step_split:
        steps = split_solution(text, step_split)
    answer = grader.extract_answer(text)
    return Trace(problem_id=problem.id, prompt=problem.prompt, steps=steps or [text], final_answer=answer,
                 outcome=float(grader.is_correct(answer, problem.answer)), meta=meta)


def gold_first_error(problem: Problem, steps: list[str], task: str = "") -> int | None:
    """The gold first-error index of `steps` where the task (`task`, else the problem's) has step gold;
    None otherwise."""
    own = getattr(get_grader(task or problem.task), "first_error", None)
    return own(problem, steps) if own is not None else None
