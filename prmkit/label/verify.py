"""Tool-checked step labels (FoVer / GroundedPRM style): exact where a tool covers the step,
unknown (None) where it does not — never guessed.

Checkers (each maps a trace to one value per step: 1.0 right, 0.0 wrong, None uncovered):
- `gym`: the gym's exact checker (`prmkit.gym.task`).  Steps before the gold first error are
  right, the first error is wrong, later steps are checked one by one against the true chain.
- `calculator`: GSM8K `<<expr=value>>` annotations (`prmkit.tasks.calculator.check_step`).
- `sympy`: `lhs = rhs` (or chained `a = b = c`) arithmetic/algebra written in a step, parsed by a
  safe AST walk into sympy and checked by `simplify(lhs - rhs) == 0`.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable

from prmkit.errors import InputError
from prmkit.schema import Problem, StepLabels, Trace

# ---------------------------------------------------------------------------------------------
# gym


def gym_step_labels(trace: Trace) -> list[float | None]:
    from prmkit.gym.task import first_error, parse_prompt, step_is_correct

    chain = parse_prompt(trace.prompt)
    fe = first_error(trace.steps, chain)
    if fe == -1:
        return [1.0] * len(trace.steps)
    tail = [1.0 if step_is_correct(s, k, chain) else 0.0 for k, s in enumerate(trace.steps) if k > fe]
    return [1.0] * fe + [0.0] + tail


# ---------------------------------------------------------------------------------------------
# GSM8K calculator annotations


def calculator_step_labels(trace: Trace) -> list[float | None]:
    from prmkit.tasks.calculator import check_step

    out: list[float | None] = []
    for s in trace.steps:
        c = check_step(s)
        out.append(None if c.ok is None else (1.0 if c.ok else 0.0))
    return out


# ---------------------------------------------------------------------------------------------
# sympy equations

_LATEX = [(r"\times", "*"), (r"\cdot", "*"), (r"\div", "/"), ("×", "*"), ("÷", "/"), ("−", "-"), ("^", "**"),
          ("{", "("), ("}", ")"), ("$", ""), (r"\(", ""), (r"\)", ""), (r"\[", ""), (r"\]", "")]
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_IMPLICIT_RE = re.compile(r"(?<=[\d)])\s*(?=[A-Za-z(])")
_MAX_POW = 1000


def _to_sympy(node: ast.AST):
    import sympy

    if isinstance(node, ast.Expression):
        return _to_sympy(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return sympy.Rational(str(node.value))
    if isinstance(node, ast.Name) and len(node.id) == 1:
        return sympy.Symbol(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        v = _to_sympy(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _to_sympy(node.left), _to_sympy(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div):
            if b == 0:
                raise ValueError("division by zero")
            return a / b
        if isinstance(node.op, ast.Pow):
            if not (b.is_number and abs(b) <= _MAX_POW):
                raise ValueError("exponent too large or symbolic")
            return a ** b
    raise ValueError(f"unsupported syntax {type(node).__name__}")


def parse_math(expr: str):
    """A sympy expression from arithmetic/algebra text (numbers, one-letter variables, + - * / ^,
    parentheses, implicit products like `2x`); ValueError on anything else (words, calls)."""
    text = _FRAC_RE.sub(r"((\1)/(\2))", expr)
    for a, b in _LATEX:
        text = text.replace(a, b)
    text = text.replace(",", "").strip().rstrip(".")
    text = _IMPLICIT_RE.sub("*", text)
    if not text or len(text) > 200:
        raise ValueError("empty or too long")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not an expression: {text!r}") from e
    return _to_sympy(tree)


_WORD_RE = re.compile(r"[A-Za-z]{2,}\w*")
_CALL_RE = re.compile(r"[A-Za-z]{2,}\w*\s*\(")


def check_equation_text(step: str) -> bool | None:
    """True/False when the step contains `lhs = rhs` equations that all parse (each chained pair
    must hold), None when it contains none the checker can read.

    Prose splits the text into math runs (words of two or more letters end a run); a function
    call such as `sqrt(16)` makes its run unreadable rather than being dropped, and a run whose
    left side is a bare variable (`x = 3`) is a definition, not a claim."""
    import sympy

    text = _FRAC_RE.sub(r"((\1)/(\2))", step)
    for a, b in _LATEX:
        if a.startswith("\\"):
            text = text.replace(a, b)
    text = _CALL_RE.sub(" § ", text)
    verdicts = []
    for run in _WORD_RE.split(text):
        if "=" not in run or "§" in run:
            continue
        sides = [s.strip().strip(",;:").strip() for s in run.split("=")]
        if any(not s for s in sides):
            continue
        try:
            exprs = [parse_math(s) for s in sides]
        except ValueError:
            continue
        if exprs[0].is_Symbol:
            continue  # "x = 3": a definition, nothing to check
        verdicts.append(all(sympy.simplify(a - b) == 0 for a, b in zip(exprs, exprs[1:])))
    if not verdicts:
        return None
    return all(verdicts)


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
        from prmkit.gym.task import parse_prompt

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
        values = CHECKERS[name](t)
        out.append(dataclasses.replace(t, labels=StepLabels(
            values=values, method="verify", rollouts=0, policy_tokens=0,
            meta={"checker": name, "covered": sum(v is not None for v in values)})))
    return out
