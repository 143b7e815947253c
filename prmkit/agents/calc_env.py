"""A second, small environment: arithmetic with a calculator tool only (the example of docs/agents.md).

A problem asks for the value of an expression too long to do in one's head (`Q:(37*4+9)*3`); the
agent may call `C:<expression>` as often as it likes (the observation is `O:<value>` or `O:error`)
and ends with `A:<value>`. A turn's gold: valid (the call parses), useful (its result is a
sub-expression's value of the problem, or the answer), redundant (a result already seen),
wrong (invalid, or a final answer that is not the value).
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass

from prmkit.agents.env import Episode, EnvTask, Observation
from prmkit.agents.hopgym.tools import calculate, show_number
from prmkit.schema import Problem

TASK = "calc"


def make_problem(index: int, seed: int = 0) -> Problem:
    """`(a*b+c)*d`-shaped problems, one per index."""
    rng = random.Random(seed * 1_000_003 + index)
    a, b, c, d = rng.randint(11, 99), rng.randint(2, 9), rng.randint(1, 99), rng.randint(2, 9)
    expr = f"({a}*{b}+{c})*{d}"
    return Problem(id=f"calc-{index}", prompt=f"Q:{expr}\n", answer=show_number(calculate(expr)), task=TASK)


def subexpression_values(expr: str) -> set[str]:
    """The value of every sub-expression of `expr` (what a useful calculator call can produce)."""
    out = set()
    for node in ast.walk(ast.parse(expr, mode="eval")):
        if isinstance(node, ast.BinOp):
            value = calculate(ast.unparse(node))
            if value is not None:
                out.add(show_number(value))
    return out


@dataclass
class CalcEnv:
    """One episode (implements `prmkit.agents.env.Environment`)."""

    prompt: str

    def reset(self) -> str:
        return self.prompt

    def step(self, action: str) -> Observation:
        if action.startswith("A:"):
            return Observation("", True)
        if action.startswith("C:"):
            value = calculate(action[2:])
            return Observation("O:error" if value is None else f"O:{show_number(value)}", False)
        return Observation("O:error", False)


def outcome(problem: Problem, episode: Episode) -> float:
    return float(episode.finished and episode.answer == problem.answer)


def gold(problem: Problem, actions: list[str]) -> list[dict]:
    needed = subexpression_values(problem.prompt[2:].strip())
    seen: set[str] = set()
    out = []
    for action in actions:
        if action.startswith("A:"):
            right = action[2:] == problem.answer
            out.append({"kind": "answer", "valid": True, "useful": right, "redundant": False, "wrong": not right})
            break
        value = calculate(action[2:]) if action.startswith("C:") else None
        result = None if value is None else show_number(value)
        useful = result in needed and result not in seen
        out.append({"kind": "calc", "valid": value is not None, "useful": useful,
                    "redundant": result in seen, "wrong": value is None})
        if result is not None:
            seen.add(result)
    return out


def calc_task() -> EnvTask:
    return EnvTask(name=TASK, make_env=lambda problem: CalcEnv(problem.prompt), outcome=outcome, gold=gold)
