"""Check GSM8K calculator annotations: a step-level tool checker.

GSM8K solutions annotate each computation as `<<expr=value>>`, followed by the value as written in
the prose: `80,000+50,000=$<<80000+50000=130000>>130,000`. `check_step` re-evaluates every
annotation exactly (rational arithmetic, see `safe_eval`) and flags a step when

* the expression does not evaluate to the annotated value. An annotated integer must match
  exactly; an annotated non-integer must match after rounding to the decimals it is written with
  (|evaluated - annotated| <= half a unit of its last decimal place), so `10/3=3.33` passes while
  `10/3=3.3333` with `3.34` does not. On GSM8K's test split every annotation is in fact exact.
* the value written right after `>>` (ignoring `$`, thousands commas, `%` and trailing units)
  differs from the annotated value, with the same rounding allowance (a written `50%` may also
  stand for an annotated 0.5).

Steps with no annotation are not covered (`ok=None`). An annotation that cannot be checked (an
expression `safe_eval` refuses, or a value that is not a number) makes its step `ok=None` unless
another annotation in the step already fails.

`safe_eval` never calls eval/exec: it parses with `ast` and walks only number literals, + - * / **,
unary signs and parentheses. It is bounded by construction: every literal, annotated or written
number and every intermediate value must fit in `MAX_BITS` bits (numerator and denominator, about
3,010 digits; sizes are checked before anything is computed: digits plus exponent for a literal,
bits times exponent for a power), and a walk past `MAX_SECONDS` stops. A step beyond a bound is
unchecked (`ok=None`), never a crash or a hang.
"""

from __future__ import annotations

import ast
import operator
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from prmkit.errors import InputError
from prmkit.schema import iter_jsonl
from prmkit.steps import split_steps

MAX_EXPR_CHARS = 500
MAX_EXPONENT = 100  # |exponent| allowed in `**`
MAX_POWER_BITS = 10_000  # bound on the size of a power's result
MAX_BITS = 10_000  # bound on the numerator and denominator of every value (~3,010 digits)
MAX_DIGITS = 3_011  # bound on a decimal number's digits plus its exponent, checked before it is read
# (3,011 = the digits of a MAX_BITS-bit integer, so every value within the bounds can be written)
MAX_SECONDS = 1.0  # wall-clock bound on one expression's walk

ANNOTATION_RE = re.compile(r"<<([^<>]*)>>")
# a number as written in prose: sign, `$`, thousands commas, decimals
WRITTEN_RE = re.compile(
    r"\s*\$?\s*(?P<num>-?\$?(?:\d+/[1-9]\d*(?!\d|\.\d)|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+))(?P<pct>\s*%)?")

_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_PERCENT_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*%")
_LEADING_ZEROS_RE = re.compile(r"(?<![\d.])0+(?=\d)")

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


# ---------------------------------------------------------------------------------------------
# safe arithmetic


def _normalize(expr: str) -> str:
    """Rewrite calculator notation into Python syntax: drop `$` and thousands commas, `50%` ->
    `(50/100)`, `x`/`×` between operands and `÷` as operators, `^` as power, `007` -> `7`."""
    s = expr.replace("$", "").replace("\u2212", "-").replace("×", "*").replace("÷", "/")
    s = _THOUSANDS_RE.sub("", s)
    s = _PERCENT_RE.sub(r"(\1/100)", s)
    s = re.sub(r"(?<=[\d)\s])\s*[xX]\s*(?=[\d(.])", "*", s)
    s = s.replace("^", "**")
    return _LEADING_ZEROS_RE.sub("", s)


def _bounded(value: Fraction) -> Fraction:
    """`value`, or ValueError when its numerator or denominator is over `MAX_BITS` bits."""
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise ValueError(f"a value is over {MAX_BITS} bits (about {MAX_BITS * 3 // 10} digits)")
    return value


def _decimal(text: str) -> Fraction:
    """The exact value of a decimal numeral (`1.5`, `2e3`), refusing before it is expanded one whose
    digits plus exponent exceed `MAX_DIGITS` (`1e99999999` would be a 100-million-digit integer)."""
    if len(text) > 2 * MAX_DIGITS + 16:  # cannot be within the bounds: refused before it is parsed
        raise ValueError(f"number {text!r:.40} has over {MAX_DIGITS} digits")
    try:
        d = Decimal(text)
    except ArithmeticError as e:  # decimal.InvalidOperation
        raise ValueError(f"not a number: {text!r:.40}") from e
    if not d.is_finite():
        raise ValueError(f"not a finite number: {text!r:.40}")
    sign, digits, exponent = d.as_tuple()
    if len(digits) + abs(int(exponent)) > MAX_DIGITS:
        raise ValueError(f"number {text!r:.40} has over {MAX_DIGITS} digits")
    return _bounded(Fraction(d))


def _literal(node: ast.Constant, source: str) -> Fraction:
    """A number literal's exact value, read from its source text (0.1 is 1/10, not a binary float)."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"unsupported literal {value!r}")
    if isinstance(value, int):
        return _bounded(Fraction(value))
    text = ast.get_source_segment(source, node) or repr(value)
    return _decimal(text.replace("_", ""))


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise ValueError(f"non-integer exponent {exponent} is not supported")
    e = exponent.numerator
    if abs(e) > MAX_EXPONENT:
        raise ValueError(f"exponent {e} is too large (limit {MAX_EXPONENT})")
    bits = max(abs(base.numerator), abs(base.denominator)).bit_length()
    if bits * abs(e) > MAX_POWER_BITS:
        raise ValueError(f"power result too large ({bits * abs(e)} bits)")
    if base == 0 and e < 0:
        raise ValueError("division by zero")
    return base ** e


def _walk(node: ast.AST, source: str, deadline: float) -> Fraction:
    """Exact value of a whitelisted node; every result is bounded (operands within `MAX_BITS`
    make + - * / results at most about twice that, so checking after each is cheap)."""
    if time.monotonic() > deadline:
        raise ValueError(f"expression took over {MAX_SECONDS} s")
    if isinstance(node, ast.Expression):
        return _walk(node.body, source, deadline)
    if isinstance(node, ast.Constant):
        return _literal(node, source)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_walk(node.operand, source, deadline))
    if isinstance(node, ast.BinOp):
        left, right = _walk(node.left, source, deadline), _walk(node.right, source, deadline)
        if isinstance(node.op, ast.Pow):
            return _bounded(_power(left, right))
        if type(node.op) in _BINOPS:
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError("division by zero")
            return _bounded(_BINOPS[type(node.op)](left, right))
        raise ValueError(f"operator {type(node.op).__name__} is not allowed")
    raise ValueError(f"{type(node).__name__} is not allowed in an arithmetic expression")


def safe_eval(expr: str) -> Fraction:
    """Exact value of an arithmetic expression, as a Fraction.

    Allowed: decimal numbers (thousands commas and `$` are dropped), `50%` (= 0.5), + - * / and
    ** with an integer exponent of at most `MAX_EXPONENT`, unary signs and parentheses. Anything
    else (names, calls, attributes, subscripts, comparisons, huge powers, division by zero, a value
    over `MAX_BITS` bits, a walk over `MAX_SECONDS`) raises ValueError. Input is parsed with `ast`
    and only whitelisted nodes are evaluated.
    """
    if not isinstance(expr, str):
        raise ValueError(f"expected a string expression, got {type(expr).__name__}")
    if len(expr) > MAX_EXPR_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPR_CHARS} characters")
    source = _normalize(expr).strip()
    if not source:
        raise ValueError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as e:
        raise ValueError(f"not an arithmetic expression: {expr!r:.80}") from e
    try:
        return _walk(tree, source, time.monotonic() + MAX_SECONDS)
    except RecursionError as e:
        raise ValueError("expression nested too deeply") from e


# ---------------------------------------------------------------------------------------------
# step checking


@dataclass
class AnnotationCheck:
    """One `<<expr=value>>` annotation: what it says, what it evaluates to, what the text says."""

    expr: str
    annotated: str  # the value after `=` inside the annotation
    evaluated: Fraction | None  # exact value of `expr`; None if it could not be evaluated
    written: str | None  # the number written right after `>>` (None if there is none)
    ok: bool | None  # None: could not be checked
    reason: str


@dataclass
class StepCheck:
    """Result of checking one step: `ok` is None when the step is not covered (no annotation)."""

    step: str
    covered: bool
    ok: bool | None
    annotations: list[AnnotationCheck] = field(default_factory=list)
    reason: str = ""


def _decimals(text: str) -> int:
    """Number of decimal places a number is written with ("1.50" -> 2, "12" -> 0, "3/4" -> 0)."""
    if "/" in text:
        return 0
    digits = text.split(".", 1)
    return len(digits[1]) if len(digits) == 2 else 0


def _parse_number(text: str) -> Fraction:
    """Exact value of a written number such as `-$1,234.50` or a fraction `3/4`; ValueError if
    it is neither."""
    cleaned = text.strip().replace("$", "").replace(",", "").replace("\u2212", "-")
    try:
        if "/" in cleaned:  # a plain fraction a/b, as in `<<3/4=3/4>>3/4`
            num, den = cleaned.split("/")
            return _bounded(_decimal(num) / _decimal(den))
        return _decimal(cleaned)
    except ValueError:
        raise
    except Exception as e:  # ZeroDivisionError, unpacking errors
        raise ValueError(f"not a number: {text!r:.40}") from e


def matches(value: Fraction, stated: str) -> bool:
    """Whether `value` is what `stated` says, given how many decimals `stated` is written with.

    An integer must match exactly; a number with d decimals must be within half a unit of its
    d-th decimal place (covers round-half-up and round-half-even).
    """
    target = _parse_number(stated)
    d = _decimals(stated.strip())
    if d == 0:
        return value == target
    return abs(value - target) <= Fraction(1, 2 * 10 ** d)


def _written_after(text: str) -> tuple[str | None, bool]:
    """The number written at the start of `text` (after `>>`) and whether a `%` follows it."""
    m = WRITTEN_RE.match(text)
    if not m:
        return None, False
    return m.group("num"), bool(m.group("pct"))


def check_annotation(inner: str, after: str = "") -> AnnotationCheck:
    """Check one annotation body `expr=value`; `after` is the text following its `>>`."""
    written, percent = _written_after(after)
    if inner.count("=") != 1:
        return AnnotationCheck(inner, "", None, written, None,
                               f"annotation <<{inner}>> is not of the form expr=value")
    expr, annotated = (p.strip() for p in inner.split("="))
    try:
        annotated_value = _parse_number(annotated)
    except ValueError:
        return AnnotationCheck(expr, annotated, None, written, None,
                               f"annotated value {annotated!r} is not a number")
    try:
        value = safe_eval(expr)
    except ValueError as e:
        return AnnotationCheck(expr, annotated, None, written, None,
                               f"cannot evaluate {expr!r}: {e}")
    if not matches(value, annotated):
        return AnnotationCheck(expr, annotated, value, written, False,
                               f"{expr} = {_show(value)}, not {annotated}")
    if written is not None:
        try:
            written_ok = (matches(annotated_value, written) or matches(_parse_number(written), annotated)
                          or (percent and matches(annotated_value * 100, written)))
        except ValueError as e:  # a written number beyond the bounds
            return AnnotationCheck(expr, annotated, value, written, None, f"cannot read the written value: {e}")
        if not written_ok:
            return AnnotationCheck(expr, annotated, value, written, False,
                                   f"annotated {annotated} but wrote {written}")
    return AnnotationCheck(expr, annotated, value, written, True, "ok")


def _show(value: Fraction) -> str:
    """A short readable form of an exact value."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6g}"


def check_step(step: str) -> StepCheck:
    """Check every `<<expr=value>>` annotation in a step (see the module docstring)."""
    annotations = [check_annotation(m.group(1), step[m.end():]) for m in ANNOTATION_RE.finditer(step)]
    if not annotations:
        return StepCheck(step, covered=False, ok=None, reason="no calculator annotation")
    failed = [a for a in annotations if a.ok is False]
    unchecked = [a for a in annotations if a.ok is None]
    if failed:
        return StepCheck(step, True, False, annotations, "; ".join(a.reason for a in failed))
    if unchecked:
        return StepCheck(step, True, None, annotations, "; ".join(a.reason for a in unchecked))
    return StepCheck(step, True, True, annotations, "ok")


def solution_steps(answer_text: str) -> list[str]:
    """The steps of a GSM8K answer: its non-blank lines before the `####` line."""
    return split_steps(answer_text.split("####", 1)[0])


def check_solution(answer_text: str) -> list[StepCheck]:
    """`check_step` on each step of a GSM8K answer (lines before `####`)."""
    return [check_step(s) for s in solution_steps(answer_text)]


def scan_file(path: str | Path, field_name: str = "answer") -> dict:
    """Check every solution in a GSM8K JSONL file.

    Returns totals `problems`, `steps`, `covered`, `passed`, `flagged`, `unchecked` and
    `flagged_examples` / `unchecked_examples`: lists of {index, line, step, reason} where `index`
    is the 0-based problem index and `line` the file line.
    """
    totals = {"problems": 0, "steps": 0, "covered": 0, "passed": 0, "flagged": 0, "unchecked": 0,
              "flagged_examples": [], "unchecked_examples": []}
    for index, (lineno, record) in enumerate(iter_jsonl(path)):
        if not isinstance(record, dict) or not isinstance(record.get(field_name), str):
            raise InputError(f"expected a string field {field_name!r}", file=str(path), line=lineno,
                             field=field_name)
        totals["problems"] += 1
        for check in check_solution(record[field_name]):
            totals["steps"] += 1
            if not check.covered:
                continue
            totals["covered"] += 1
            key = {True: "passed", False: "flagged", None: "unchecked"}[check.ok]
            totals[key] += 1
            if check.ok is not True:
                totals[f"{key}_examples"].append(
                    {"index": index, "line": lineno, "step": check.step, "reason": check.reason})
    return totals
