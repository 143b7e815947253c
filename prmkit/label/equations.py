"""The sympy step checker: `lhs = rhs` equations (chains `a = b = c` included) written in a step,
read by a safe AST walk into sympy and checked exactly, within bounds.

How a step is read (`check_equation_text`):

* Prose splits the text into math runs (words of two or more letters, `;`, `=>`, arrows and a comma
  followed by a space end a run); a run with a function call (`sqrt(16)`) or anything else the
  walk refuses is unreadable and gives no verdict.
* A run `x = <expr> = ...` whose first side is a bare variable defines `x`; its other sides are a
  chain like any other (`x = 12*3/2 = 18` checks `12*3/2 = 18`). When the defining side has no
  variables, the step gives `x` that value.
* Every consecutive pair of a chain must be equal. Variables the step gives a value to are replaced
  by it (`2/3*x = 12, so x = 18` holds). An equation with a variable the step gives no value to is
  a condition to solve when the variables are on one side only (`2/3*x = 12` alone: no verdict),
  and an identity when both sides have them (`(x+1)^2 = x^2 + 2x + 1` holds, `(x+1)^2 = x^2 + 1`
  does not).
* Zero test: exact rational arithmetic when no variable is left, `cancel` (exact for rational
  functions) when every power is an integer, `simplify` otherwise (radicals).

Bounds, checked on the expression tree before anything is built (so no value is ever computed that
breaks them): every coefficient's size (`MAX_BITS`, bits times exponent for a power), the degree
(`MAX_DEGREE`) and the number of terms once expanded (`MAX_TERMS`); an equation beyond them is
unreadable. A step's whole check also stops after `MAX_SECONDS` (a deadline checked on every
Python call, in any thread; see `_deadline`) and is then unknown, and sympy's caches are emptied so
the stopped attempt cannot change a later verdict. Never a crash, never a hang.
"""

from __future__ import annotations

import ast
import math
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

from prmkit.tasks.calculator import _bounded, _decimal

MAX_BITS = 10_000  # bound on any coefficient's numerator and denominator (~3,000 digits)
MAX_DEGREE = 100  # bound on the total degree in the variables
MAX_TERMS = 2_000  # bound on the number of terms of the expanded form
MAX_POW = 1000  # bound on |exponent|
MAX_SECONDS = 1.0  # wall-clock bound on checking one step
MAX_CHARS = 200  # bound on one side's text
MAX_STEP_CHARS = 20_000  # a longer step is not read at all (unknown)

_LATEX = [(r"\times", "*"), (r"\cdot", "*"), (r"\div", "/"), ("×", "*"), ("÷", "/"), ("−", "-"), ("^", "**"),
          ("{", "("), ("}", ")"), ("$", ""), (r"\(", ""), (r"\)", ""), (r"\[", ""), (r"\]", "")]
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_IMPLICIT_RE = re.compile(r"(?<=[\d)])\s*(?=[A-Za-z(])")
_WORD_RE = re.compile(r"[A-Za-z]{2,}\w*")
_CALL_RE = re.compile(r"[A-Za-z]{2,}\w*\s*\(")
_RUN_SEP_RE = re.compile(r"=>|⇒|→|;|,(?=\s)|\n")


class _Timeout(BaseException):
    """The step's deadline passed (a BaseException, so sympy's `except Exception` cannot swallow it)."""


def _importing(frame) -> bool:
    """Whether a module is being imported somewhere up the stack (stopping an import half-way would
    leave the module broken for the rest of the process, so the deadline waits for it)."""
    while frame is not None:
        if "importlib" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


@contextmanager
def _deadline(seconds: float):
    """Raise `_Timeout` in the code run inside once `seconds` have passed. A profile hook (per
    thread, checked on every call and return) rather than a signal or a watchdog thread: it works
    in server worker threads and stops pure-Python work (all of sympy) where it is. CPython drops
    a hook that raises, so a timeout that the code inside swallowed is raised again on the way out
    (its result cannot be trusted)."""
    end = time.monotonic() + seconds
    previous = sys.getprofile()

    def hook(frame, event, arg):
        if time.monotonic() > end and not _importing(frame):
            raise _Timeout()

    sys.setprofile(hook)
    try:
        yield
    finally:
        sys.setprofile(previous)
    if time.monotonic() > end:
        raise _Timeout()


# ---------------------------------------------------------------------------------------------
# parsing and size bounds


def math_ast(expr: str) -> ast.Expression:
    """The Python AST of arithmetic/algebra text (LaTeX fractions and operators, `^`, implicit
    products like `2x`, thousands commas); ValueError when it is not an expression."""
    text = _FRAC_RE.sub(r"((\1)/(\2))", expr)
    for a, b in _LATEX:
        text = text.replace(a, b)
    text = text.replace(",", "").strip().rstrip(".")
    text = _IMPLICIT_RE.sub("*", text)
    if not text or len(text) > MAX_CHARS:
        raise ValueError("empty or too long")
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ValueError(f"not an expression: {text!r:.60}") from e


@dataclass(frozen=True)
class Size:
    """Upper bounds on an expression's expanded form: coefficient bits, degree, terms, variables."""

    bits: float
    degree: float
    terms: float
    symbols: frozenset = frozenset()


def _literal(node: ast.Constant) -> Fraction:
    v = node.value
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"unsupported literal {v!r:.40}")
    return _bounded(Fraction(v)) if isinstance(v, int) else _decimal(repr(v))


def _check(s: Size) -> Size:
    if s.bits > MAX_BITS or s.degree > MAX_DEGREE or s.terms > MAX_TERMS:
        raise ValueError(f"expression too large (bits {s.bits:.0f}, degree {s.degree:.0f}, terms {s.terms:.0f})")
    if s.symbols and s.degree == int(s.degree):  # a polynomial in v variables has <= C(d + v, v) terms
        return Size(s.bits, s.degree, min(s.terms, math.comb(int(s.degree) + len(s.symbols), len(s.symbols))),
                    s.symbols)
    return s


def _pow_size(base: Size, e: Fraction) -> Size:
    k = abs(e)
    if k > MAX_POW:
        raise ValueError(f"exponent {e} too large (limit {MAX_POW})")
    log_terms = math.log2(base.terms) if base.terms > 1 else 0.0
    terms = 1.0 if base.terms <= 1 else (math.inf if k * log_terms > 60 else base.terms ** float(k))
    cap = (math.comb(int(math.ceil(base.degree * k)) + len(base.symbols), len(base.symbols))
           if base.symbols and base.degree * k <= MAX_DEGREE else math.inf)
    return _check(Size(float(k) * (base.bits + log_terms + 1), base.degree * float(k), min(terms, cap), base.symbols))


def size(node: ast.AST, values: dict[str, Fraction]) -> Size:
    """Bounds of a whitelisted node (numbers, one-letter variables, + - * / **, unary signs), with
    `values` substituted; ValueError for anything else or anything over the bounds."""
    if isinstance(node, ast.Expression):
        return size(node.body, values)
    if isinstance(node, ast.Constant):
        f = _literal(node)
        return Size(max(f.numerator.bit_length(), f.denominator.bit_length()), 0, 1)
    if isinstance(node, ast.Name) and len(node.id) == 1:
        if node.id in values:
            f = values[node.id]
            return Size(max(f.numerator.bit_length(), f.denominator.bit_length()), 0, 1)
        return Size(1, 1, 1, frozenset({node.id}))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return size(node.operand, values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
        a = size(node.left, values)
        if isinstance(node.op, ast.Pow):
            return _pow_size(a, _exponent(node.right, values))
        b = size(node.right, values)
        syms = a.symbols | b.symbols
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return _check(Size(max(a.bits, b.bits) + 1, max(a.degree, b.degree), a.terms + b.terms, syms))
        mix = math.log2(min(a.terms, b.terms)) + 1  # a coefficient of a product sums this many products
        return _check(Size(a.bits + b.bits + mix, a.degree + b.degree, a.terms * b.terms, syms))
    raise ValueError(f"unsupported syntax {type(node).__name__}")


def _exponent(node: ast.AST, values: dict[str, Fraction]) -> Fraction:
    """An exponent's exact value: it must be a number (after `values`) and rational."""
    s = size(node, values)
    if s.symbols:
        raise ValueError("symbolic exponent")
    e = build(node, values)
    if not e.is_Rational:
        raise ValueError("irrational exponent")
    return Fraction(int(e.p), int(e.q))


def build(node: ast.AST, values: dict[str, Fraction]):
    """The sympy expression of a node already bounded by `size`."""
    import sympy

    if isinstance(node, ast.Expression):
        return build(node.body, values)
    if isinstance(node, ast.Constant):
        f = _literal(node)
        return sympy.Rational(f.numerator, f.denominator)
    if isinstance(node, ast.Name):
        if node.id in values:
            return sympy.Rational(values[node.id].numerator, values[node.id].denominator)
        return sympy.Symbol(node.id)
    if isinstance(node, ast.UnaryOp):
        v = build(node.operand, values)
        return -v if isinstance(node.op, ast.USub) else v
    a, b = build(node.left, values), build(node.right, values)
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
    if a == 0 and b.is_negative:
        raise ValueError("division by zero")
    return a ** b


def parse_math(expr: str, values: dict[str, Fraction] | None = None):
    """A sympy expression from arithmetic/algebra text (numbers, one-letter variables, + - * / ^,
    parentheses, implicit products like `2x`), within the bounds; ValueError on anything else."""
    tree = math_ast(expr)
    size(tree, values or {})
    return build(tree, values or {})


# ---------------------------------------------------------------------------------------------
# reading a step


def _chains(step: str) -> list[list[ast.Expression]]:
    """The readable equation chains of a step, each as the ASTs of its sides (see the module doc)."""
    text = _FRAC_RE.sub(r"((\1)/(\2))", step)
    for a, b in _LATEX:
        if a.startswith("\\"):
            text = text.replace(a, b)
    text = _CALL_RE.sub(" § ", text)
    chains = []
    for run in (r for part in _RUN_SEP_RE.split(text) for r in _WORD_RE.split(part)):
        if "=" not in run or "§" in run:
            continue
        sides = [s.strip().strip(",;:").strip() for s in run.split("=")]
        if any(not s for s in sides):
            continue
        try:
            chains.append([math_ast(s) for s in sides])
        except ValueError:
            continue
    return chains


def _defined(side: ast.Expression) -> str | None:
    """The variable a side is, when it is a bare one-letter variable."""
    return side.body.id if isinstance(side.body, ast.Name) and len(side.body.id) == 1 else None


def _values(chains: list[list[ast.Expression]]) -> dict[str, Fraction]:
    """The values the step gives its variables: `x = <number expression>`; a variable given two
    different values gets none."""
    found: dict[str, set] = {}
    for chain in chains:
        name = _defined(chain[0])
        if name is None or len(chain) < 2:
            continue
        try:
            if size(chain[1], {}).symbols:
                continue
            v = build(chain[1], {})
        except ValueError:
            continue
        if v.is_Rational:
            found.setdefault(name, set()).add(Fraction(int(v.p), int(v.q)))
    return {k: next(iter(v)) for k, v in found.items() if len(v) == 1}


def _equal(a: ast.Expression, b: ast.Expression, values: dict[str, Fraction]) -> bool:
    """Exact test of `a == b` with `values` substituted (ValueError when beyond the bounds)."""
    import sympy

    diff = ast.Expression(body=ast.BinOp(left=a.body, op=ast.Sub(), right=b.body))
    size(diff, values)
    d = build(diff, values)
    if d.is_Rational:
        return d == 0
    if all(p.exp.is_Integer for p in d.atoms(sympy.Pow)):
        return sympy.cancel(d) == 0
    return sympy.simplify(d) == 0


def _claims(sides: list[ast.Expression], values: dict[str, Fraction]) -> list[tuple]:
    """The pairs of a chain that claim something: an equation with variables on one side only
    (`2/3*x = 12` when the step gives x no value) is a condition to solve, not a claim."""
    out = []
    for a, b in zip(sides, sides[1:]):
        if bool(size(a, values).symbols) == bool(size(b, values).symbols):
            out.append((a, b))
    return out


def _verdicts(chains: list[list[ast.Expression]]) -> list[bool]:
    values = _values(chains)
    out = []
    for chain in chains:
        sides = chain[1:] if _defined(chain[0]) is not None else chain  # "x = 3": a definition
        try:
            claims = _claims(sides, values)
            if claims:
                out.append(all(_equal(a, b, values) for a, b in claims))
        except ValueError:
            continue  # beyond the bounds: this chain is unreadable
    return out


def check_equation_text(step: str, max_seconds: float = MAX_SECONDS) -> bool | None:
    """True/False when the step has equation chains the checker can read (every pair of each
    must hold), None when it has none, is over `MAX_STEP_CHARS`, or takes over `max_seconds`."""
    if len(step) > MAX_STEP_CHARS:
        return None
    import sympy  # noqa: F401 - imported before the clock starts (the first import takes about a second)

    try:
        with _deadline(max_seconds):
            verdicts = _verdicts(_chains(step))
    except (_Timeout, RecursionError, MemoryError):
        _forget_partial_work()
        return None
    return all(verdicts) if verdicts else None


def _forget_partial_work() -> None:
    """Empty sympy's caches after a stopped check: what the stopped attempt computed stays cached, and a
    second check of the same step could then finish inside the deadline (unknown, then False), so a
    step's verdict would depend on what the process checked before. Only stopped checks pay for it."""
    from sympy.core.cache import clear_cache

    clear_cache()
