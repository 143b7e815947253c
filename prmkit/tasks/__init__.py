"""Problem sets and outcome graders behind one interface.

A grader turns a solution's text (or its final-answer string) into a graded outcome:

    grader = get_grader("gsm8k")
    grader.extract_answer(text) -> str | None     # the final answer written in a solution
    grader.is_correct(predicted, reference) -> bool
    grader.equivalent(a, b) -> bool               # optional: two final answers are one answer (votes)
"""

from __future__ import annotations

import importlib
from typing import Callable, Protocol


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
        from prmkit.errors import InputError

        raise InputError(f"unknown task {task!r}; expected one of {sorted(GRADERS)}", field="task")
    module, attr = GRADERS[task].split(":")
    return getattr(importlib.import_module(module), attr)()


def answer_equivalence(task: str) -> Callable[[str, str], bool] | None:
    """The task's answer equivalence for grouping votes (`grader.equivalent`), or None = exact strings.

    math: math-verify equivalence; gsm8k: equal numbers after normalisation; gym: None (its
    answers are canonical integers already, so votes stay exactly as before)."""
    return getattr(get_grader(task), "equivalent", None)
