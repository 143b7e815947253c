"""An independent re-derivation of the gym's step gold, for tests that must not grade the gym's
checker with itself.

Written from the task's definition, not from `prmkit.gym.task`: the prompt "Q:a,<op>b,..." fixes
the true chain a = r_0, r_{k+1} = r_k <op> b_k; step k (k < n) is right iff it is literally
"r_k<op>b_k=r_{k+1}" (canonical integers, surrounding whitespace ignored), step n iff it is
"A:r_n", and any step after that is wrong. The first error is the first wrong step; a solution
that stops early with every written step right errs at its last written step."""

from __future__ import annotations

import operator

_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}


def true_steps(prompt: str) -> list[str]:
    """The one right solution of a gym prompt, step by step (the gym only asks exact divisions)."""
    fields = prompt.strip()[len("Q:"):].split(",")
    value, out = int(fields[0]), []
    for field in fields[1:]:
        op, b = field[0], int(field[1:])
        if op == "/":
            assert value % b == 0, f"{prompt!r}: {value}/{b} is not exact"
        nxt = _OPS[op](value, b)
        out.append(f"{value}{op}{b}={nxt}")
        value = nxt
    return out + [f"A:{value}"]


def step_right(prompt: str, steps: list[str]) -> list[bool]:
    truth = true_steps(prompt)
    return [k < len(truth) and s.strip() == truth[k] for k, s in enumerate(steps)]


def first_error(prompt: str, steps: list[str]) -> int:
    right = step_right(prompt, steps)
    if not all(right):
        return right.index(False)
    return -1 if len(steps) == len(true_steps(prompt)) else max(len(steps) - 1, 0)


def verify_labels(prompt: str, steps: list[str]) -> list[float]:
    """Tool labels as `label --method verify` defines them for the gym: 1 before the first error,
    0 at it, then each later step judged on its own against the true chain."""
    fe, right = first_error(prompt, steps), step_right(prompt, steps)
    if fe == -1:
        return [1.0] * len(steps)
    return [1.0] * fe + [0.0] + [1.0 if r else 0.0 for r in right[fe + 1:]]
