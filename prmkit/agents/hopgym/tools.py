"""hopgym's tools and environment: lookup, the gym's safe calculator, and a finish action.

Action lines (one per turn) and the observation each gets:

    S:<entity> <relation>   ->  O:<entity> <relation> <value>   (exact lookup)
                                O:<twin> <relation> <value>     (no such entity: its digit-swapped
                                                                 look-alike's fact, a wrong entity)
                                O:none                          (no look-alike, or the relation does
                                                                 not apply to the entity's type)
    C:<expression>          ->  O:<value>  or  O:error
    A:<answer>              ->  (episode ends)
    anything else           ->  O:error
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from prmkit.agents.env import Observation
from prmkit.agents.hopgym.world import RELATIONS, World

LOOKUP_RE = re.compile(r"^S:([A-Z]\d\d) ([a-z]+)$")
CALC_RE = re.compile(r"^C:([0-9+\-*/() ]+)$")
ANSWER_RE = re.compile(r"^A:(\S+)$")


def show_number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def calculate(expr: str) -> Fraction | None:
    """The gym's safe calculator on `expr`; None when it cannot be evaluated."""
    from prmkit.tasks.calculator import safe_eval

    try:
        return safe_eval(expr)
    except (ValueError, ArithmeticError, OverflowError, RecursionError):
        return None


def resolve_lookup(world: World, name: str, relation: str) -> tuple[str, str | int] | None:
    """(entity answered about, value) for a lookup, following the look-alike fallback; None = `O:none`."""
    target = name if name in world.entities else f"{name[0]}{name[2]}{name[1]}"
    if target not in world.entities or RELATIONS.get(relation) != target[0]:
        return None
    return target, world.facts[(target, relation)]


def observe(world: World, action: str) -> Observation:
    """The observation `action` gets in `world` (a pure function: the environment keeps no other state)."""
    if m := LOOKUP_RE.match(action):
        hit = resolve_lookup(world, m.group(1), m.group(2))
        return Observation(f"O:{hit[0]} {m.group(2)} {hit[1]}" if hit else "O:none", False)
    if m := CALC_RE.match(action):
        value = calculate(m.group(1))
        return Observation("O:error" if value is None else f"O:{show_number(value)}", False)
    if ANSWER_RE.match(action):
        return Observation("", True)
    return Observation("O:error", False)


@dataclass
class HopEnv:
    """One hopgym episode (implements `prmkit.agents.env.Environment`)."""

    world: World
    prompt: str

    def reset(self) -> str:
        return self.prompt

    def step(self, action: str) -> Observation:
        return observe(self.world, action)
