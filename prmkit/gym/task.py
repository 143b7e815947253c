"""The arithmetic gym: chained arithmetic problems whose every step can be checked exactly.

A problem is a start value and a chain of operations applied left to right:

    prompt:    "Q:7,+3,*2,-5\n"
    solution:  "7+3=10\n10*2=20\n20-5=15\nA:15"

Steps are the solution's lines; the last step `A:<value>` states the final answer. Step k < n is
right iff it reads `a<op>b=c` with `a` the true intermediate result before operation k (a wrong
operand — e.g. a wrong value carried from an earlier step — makes the step wrong), `<op>b` the
k-th operation of the prompt, and `c` the exact value of `a<op>b`. The answer step is right iff it
states the true final value. A missing or extra step is wrong at the position where it deviates.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from prmkit.errors import InputError
from prmkit.schema import Problem, Trace

OPS = "+-*/"
_STEP_RE = re.compile(r"^(-?\d+)([+\-*/])(\d+)=(-?\d+)$")
_ANSWER_RE = re.compile(r"^A:(-?\d+)$")
_PROMPT_RE = re.compile(r"^Q:(\d+)((?:,[+\-*/]\d+)+)\n$")
_CANONICAL_RE = re.compile(r"0|-?[1-9]\d*")
MAX_DIGITS = 1000
"""most digits of any number in a gym prompt or of any true intermediate value: a prompt beyond it is
refused, and a step number longer than it cannot be right (Python refuses int() past 4,300 digits)"""


@dataclass
class GymConfig:
    """Difficulty knobs of the gym's problem generator."""

    min_ops: int = 2
    """fewest operations in a chain"""
    max_ops: int = 5
    """most operations in a chain"""
    operand_max: int = 9
    """operands are drawn from 1..operand_max (2..operand_max for '*', so no step is a no-op or a reset)"""
    max_value: int = 99
    """every intermediate result stays in [0, max_value]"""
    ops: str = "+-*"
    """operators to draw from ('/' only where it divides exactly)"""
    seed: int = 0
    """seed of the problem generator"""

    def __post_init__(self) -> None:
        if not 1 <= self.min_ops <= self.max_ops:
            raise InputError(f"expected 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}", field="min_ops")
        if not self.ops or any(o not in OPS for o in self.ops):
            raise InputError(f"expected operators from {OPS!r}, got {self.ops!r}", field="ops")
        if self.operand_max < 1 or self.max_value < self.operand_max:
            raise InputError("expected 1 <= operand_max <= max_value", field="operand_max")


# the named splits: same generator, distinct seeds so splits never share a problem stream
SPLITS: dict[str, dict] = {
    "train": dict(min_ops=2, max_ops=10, seed=1000),
    "test": dict(min_ops=2, max_ops=5, seed=2000),
    "long": dict(min_ops=6, max_ops=10, seed=3000),
    "dev": dict(min_ops=2, max_ops=5, seed=4000),
    "long_dev": dict(min_ops=6, max_ops=10, seed=5000),
}


def split_config(split: str, **overrides) -> GymConfig:
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}", field="split")
    return GymConfig(**{**SPLITS[split], **overrides})


def apply_op(a: int, op: str, b: int) -> int | None:
    """a <op> b for the gym's integer arithmetic; None when '/' does not divide exactly."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a // b if b != 0 and a % b == 0 else None
    raise ValueError(f"unknown operator {op!r}")


@dataclass
class Chain:
    start: int
    ops: list[tuple[str, int]] = field(default_factory=list)

    def values(self) -> list[int]:
        """The true intermediate results r_0 (start), r_1, ..., r_n."""
        out: list = [self.start]
        for op, b in self.ops:  # an undefined value (a hand-built chain dividing by 0) stays undefined
            out.append(None if out[-1] is None else apply_op(out[-1], op, b))
        return out

    @property
    def prompt(self) -> str:
        return "Q:" + str(self.start) + "".join(f",{op}{b}" for op, b in self.ops) + "\n"

    def solution_steps(self) -> list[str]:
        vals = self.values()
        steps = [f"{vals[i]}{op}{b}={vals[i + 1]}" for i, (op, b) in enumerate(self.ops)]
        return steps + [f"A:{vals[-1]}"]


def sample_chain(rng: random.Random, cfg: GymConfig) -> Chain:
    n = rng.randint(cfg.min_ops, cfg.max_ops)
    chain = Chain(start=rng.randint(1, cfg.operand_max))
    r = chain.start
    for _ in range(n):
        choices = []
        for op in cfg.ops:
            for b in range(2 if op in "*/" else 1, cfg.operand_max + 1):
                v = apply_op(r, op, b)
                if v is not None and 0 <= v <= cfg.max_value:
                    choices.append((op, b))
        ops_avail = sorted({op for op, _ in choices})
        op = rng.choice(ops_avail)  # operator first, so each appears evenly
        _, b = rng.choice([c for c in choices if c[0] == op])
        chain.ops.append((op, b))
        r = apply_op(r, op, b)  # type: ignore[assignment]
    return chain


def parse_prompt(prompt: str) -> Chain:
    """The chain a gym prompt states; InputError (field 'prompt') when it is not one: not of the form
    `Q:7,+3,*2\\n`, a number over `MAX_DIGITS` digits, or an operation whose result is undefined
    (division by zero, a division that is not exact) or over `MAX_DIGITS` digits."""
    m = _PROMPT_RE.match(prompt) if isinstance(prompt, str) else None
    if not m:
        raise InputError(f"expected a gym prompt like 'Q:7,+3,*2\\n', got {prompt!r:.80}", field="prompt")
    tokens = [m.group(1)] + [tok[1:] for tok in m.group(2).split(",")[1:]]
    if max(len(t) for t in tokens) > MAX_DIGITS:
        raise InputError(f"a number in the gym prompt has over {MAX_DIGITS} digits", field="prompt")
    chain = Chain(start=int(m.group(1)), ops=[(tok[0], int(tok[1:])) for tok in m.group(2).split(",")[1:]])
    value, bound = chain.start, 10 ** MAX_DIGITS
    for k, (op, b) in enumerate(chain.ops):
        new = apply_op(value, op, b)
        if new is None:
            why = "divides by zero" if b == 0 else f"does not divide {value} exactly"
            raise InputError(f"operation {k + 1} of the gym prompt ({op}{b}) {why}; gym divisions are exact",
                             field="prompt")
        if abs(new) >= bound:
            raise InputError(f"operation {k + 1} of the gym prompt ({op}{b}) gives a value over {MAX_DIGITS} "
                             "digits", field="prompt")
        value = new
    return chain


def check_prompts(problems, file: str | None = None, task: str = "") -> None:
    """Refuse, before any work, a problem of task 'gym' (or every problem when `task` is 'gym')
    whose prompt `parse_prompt` refuses; the error names the problem id (and `file` when given)."""
    for p in problems:
        if (task or p.task) == "gym":
            try:
                parse_prompt(p.prompt)
            except InputError as e:
                raise InputError(f"problem {p.id!r}: {e}", file=file, field="prompt") from None


def make_problems(cfg: GymConfig, n: int, split: str = "custom") -> list[Problem]:
    rng = random.Random(cfg.seed)
    out = []
    for i in range(n):
        ch = sample_chain(rng, cfg)
        out.append(Problem(id=f"gym-{split}-{i}", prompt=ch.prompt, answer=str(ch.values()[-1]), task="gym",
                           meta={"num_ops": len(ch.ops)}))
    return out


def make_split(split: str, n: int, **overrides) -> list[Problem]:
    return make_problems(split_config(split, **overrides), n, split=split)


def training_text(chain: Chain) -> tuple[str, str]:
    """(prompt, completion) for supervised training of the policy."""
    return chain.prompt, "\n".join(chain.solution_steps())


# ---------------------------------------------------------------------------------------------
# the exact checker


def _canonical(number: str) -> bool:
    """Numbers are written canonically (no leading zeros, no '-0'); anything else is malformed."""
    return _CANONICAL_RE.fullmatch(number) is not None


def _same(number: str, value: int | None) -> bool:
    """A canonical step number equals a true value. Compared as text (the same test as int() on a
    canonical number) so a step of any length is read without Python's int() digit limit."""
    return value is not None and _canonical(number) and number == str(value)


def step_is_correct(step: str, k: int, chain: Chain) -> bool:
    """Is step k of a solution to `chain` right (see module docstring)?"""
    vals, n = chain.values(), len(chain.ops)
    if k < n:
        m = _STEP_RE.match(step.strip())
        if not m:
            return False
        op, b = chain.ops[k]
        # a == r_k, (op, b) is the k-th operation and c == a op b, which is r_{k+1}
        return (_same(m.group(1), vals[k]) and m.group(2) == op and _same(m.group(3), b)
                and _same(m.group(4), vals[k + 1]))
    if k == n:
        m = _ANSWER_RE.match(step.strip())
        return bool(m) and _same(m.group(1), vals[-1])
    return False  # an extra step after the answer


def first_error(steps: list[str], chain: Chain) -> int:
    """Gold index of the first wrong step, -1 when every step is right and none is missing."""
    for k, s in enumerate(steps):
        if not step_is_correct(s, k, chain):
            return k
    if len(steps) < len(chain.ops) + 1:
        return len(steps) - 1 if steps else 0  # stopped early: the last written step is where it deviates
    return -1


def is_well_formed(steps: list[str]) -> bool:
    """Every line but the last is `a<op>b=c` and the last is `A:<int>`."""
    return (len(steps) >= 2 and all(_STEP_RE.match(s.strip()) for s in steps[:-1])
            and bool(_ANSWER_RE.match(steps[-1].strip())))


def extract_answer(text: str) -> str | None:
    """The value of the last `A:<int>` line, if any."""
    found = re.findall(r"(?m)^A:(-?\d+)\s*$", text)
    return found[-1] if found else None


class GymGrader:
    """Exact outcome grader of the gym: the stated answer equals the reference integer."""

    name = "gym"

    def extract_answer(self, text: str) -> str | None:
        return extract_answer(text)

    def is_correct(self, predicted: str | None, reference: str) -> bool:
        if predicted is None:
            return False
        try:
            return int(str(predicted).strip()) == int(str(reference).strip())
        except ValueError:
            return False

    # step gold and the gym's own step definition (`prmkit.tasks.grade` / `graded_trace` call these)

    def grade(self, problem: Problem, text: str) -> tuple[str | None, bool, int]:
        t = make_trace(problem, text)
        return t.final_answer, bool(t.outcome), t.first_error

    def make_trace(self, problem: Problem, text: str, meta: dict | None = None) -> Trace:
        return make_trace(problem, text, meta=meta)

    def first_error(self, problem: Problem, steps: list[str]) -> int:
        return first_error(steps, parse_prompt(problem.prompt))


def make_trace(problem: Problem, completion: str, meta: dict | None = None) -> Trace:
    """A graded trace with gold first-error index from a policy's completion text."""
    steps = [s for s in completion.split("\n") if s.strip()] or [completion]
    chain = parse_prompt(problem.prompt)
    answer = extract_answer(completion)
    return Trace(problem_id=problem.id, prompt=problem.prompt, steps=steps, final_answer=answer,
                 outcome=float(GymGrader().is_correct(answer, problem.answer)),
                 first_error=first_error(steps, chain),
                 meta={"well_formed": is_well_formed(steps), **(meta or {})})
