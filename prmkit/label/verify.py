"""Tool-checked step labels (FoVer / GroundedPRM style): exact where a tool covers the step,
unknown (None) where it does not — never guessed.

Checkers (each maps a trace to one value per step: 1.0 right, 0.0 wrong, None uncovered):
- `gym`: the gym's exact checker (`prmkit.gym.task`).  Steps before the gold first error are
  right, the first error is wrong, later steps are checked one by one against the true chain.
- `calculator`: GSM8K `<<expr=value>>` annotations (`prmkit.tasks.calculator.check_step`).
- `sympy`: `lhs = rhs` (or chained `a = b = c`) arithmetic/algebra written in a step, parsed by a
  safe, size-bounded AST walk into sympy and checked exactly (`prmkit.label.equations`).

Every checker is bounded: a step whose numbers or expressions exceed a checker's size limits, or
whose check runs past its time limit, is unknown (None), never a crash or a hang.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from prmkit.errors import InputError
from prmkit.gym.task import first_error, parse_prompt, step_is_correct
from prmkit.label.equations import check_equation_text, parse_math  # noqa: F401 - re-exported
from prmkit.schema import Problem, StepLabels, Trace
from prmkit.tasks.calculator import check_step

# ---------------------------------------------------------------------------------------------
# gym


def gym_step_labels(trace: Trace) -> list[float | None]:
    chain = parse_prompt(trace.prompt)
    fe = first_error(trace.steps, chain)
    if fe == -1:
        return [1.0] * len(trace.steps)
    tail = [1.0 if step_is_correct(s, k, chain) else 0.0 for k, s in enumerate(trace.steps) if k > fe]
    return [1.0] * fe + [0.0] + tail


# ---------------------------------------------------------------------------------------------
# GSM8K calculator annotations


def calculator_step_labels(trace: Trace) -> list[float | None]:
    out: list[float | None] = []
    for s in trace.steps:
        c = check_step(s)
        out.append(None if c.ok is None else (1.0 if c.ok else 0.0))
    return out


# ---------------------------------------------------------------------------------------------
# sympy equations (prmkit.label.equations: bounded parsing, chains, values a step gives its variables)


def sympy_step_labels(trace: Trace) -> list[float | None]:
    out: list[float | None] = []
    for s in trace.steps:
        v = check_equation_text(s)
        out.append(None if v is None else float(v))
    return out


CHECKERS: dict[str, Callable[[Trace], list[float | None]]] = {
    "gym": gym_step_labels,
    "calculator": calculator_step_labels,
    "sympy": sympy_step_labels,
}
AUTO = {"gym": "gym", "gsm8k": "calculator", "math": "sympy"}


def checker_for(trace: Trace, checker: str, problems: dict[str, Problem] | None, index: int) -> str:
    if checker != "auto":
        if checker not in CHECKERS:
            raise InputError(f"unknown checker {checker!r}; expected auto or one of {sorted(CHECKERS)}",
                             field="checker")
        return checker
    if problems is not None and trace.problem_id in problems:
        task = problems[trace.problem_id].task
    else:
        try:
            parse_prompt(trace.prompt)
            task = "gym"
        except InputError:
            annotated = any("<<" in s and ">>" in s for s in trace.steps)  # GSM8K calculator annotations
            task = str(trace.meta.get("task", "gsm8k" if annotated else "math"))
    return AUTO.get(task, "sympy")


def label_verify(traces: list[Trace], *, checker: str = "auto", problems: dict[str, Problem] | None = None,
                 start_index: int = 0) -> list[Trace]:
    """Copies of `traces` with tool labels (`method` "verify"); `labels.meta["checker"]` names the
    tool and `labels.meta["covered"]` the number of steps it decided."""
    out = []
    for i, t in enumerate(traces, start_index):
        name = checker_for(t, checker, problems, i)
        try:
            values = CHECKERS[name](t)
        except InputError as e:  # a prompt the checker cannot read (e.g. a gym prompt dividing by zero)
            raise InputError(f"trace {i} (problem_id {t.problem_id!r}), checker {name!r}: {e}") from None
        out.append(dataclasses.replace(t, labels=StepLabels(
            values=values, method="verify", rollouts=0, policy_tokens=0,
            meta={"checker": name, "covered": sum(v is not None for v in values)})))
    return out
