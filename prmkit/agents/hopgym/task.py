"""hopgym problems, splits, environments and oracle trajectories (clean and corrupted).

A problem is `Problem(task="hopgym")` whose prompt is the question line and whose `meta` holds the
seed and the generator's knobs, so its world and question are rebuilt exactly wherever it is read.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import asdict

from prmkit.agents.hopgym.tools import HopEnv, calculate, resolve_lookup, show_number
from prmkit.agents.hopgym.world import RELATIONS, HopConfig, Question, World, make_question, make_world
from prmkit.errors import InputError
from prmkit.schema import Problem

TASK = "hopgym"
SPLITS = ("train", "dev", "test")


def _seed(split: str, index: int) -> int:
    return zlib.crc32(f"hopgym/{split}/{index}".encode()) & 0x7FFFFFFF


def make_problem(split: str, index: int, cfg: HopConfig | None = None) -> Problem:
    """Problem `index` of `split` (a pure function of its arguments)."""
    if split not in SPLITS:
        raise InputError(f"unknown hopgym split {split!r}; expected one of {', '.join(SPLITS)}", field="split")
    cfg = cfg or HopConfig()
    seed = _seed(split, index)
    world = make_world(seed, cfg)
    question = make_question(seed, world, cfg)
    return Problem(id=f"hop-{split}-{index}", prompt=question.text() + "\n", answer=question.answer, task=TASK,
                   meta={"seed": seed, "hopgym": asdict(cfg)})


def make_split(split: str, n: int, cfg: HopConfig | None = None) -> list[Problem]:
    return [make_problem(split, i, cfg) for i in range(n)]


def world_of(problem: Problem) -> tuple[World, Question]:
    """The world and question a hopgym problem was made from (checked against its prompt)."""
    if "seed" not in problem.meta or "hopgym" not in problem.meta:
        raise InputError("a hopgym problem needs meta.seed and meta.hopgym", field=f"{problem.id}: meta")
    cfg = HopConfig(**problem.meta["hopgym"])
    world = make_world(int(problem.meta["seed"]), cfg)
    question = make_question(int(problem.meta["seed"]), world, cfg)
    if question.text() + "\n" != problem.prompt:
        raise InputError(f"prompt {problem.prompt!r} is not the question its seed makes ({question.text()!r})",
                         field=f"{problem.id}: prompt")
    return world, question


def make_env(problem: Problem) -> HopEnv:
    world, _ = world_of(problem)
    return HopEnv(world=world, prompt=problem.prompt)


def oracle_actions(world: World, question: Question) -> list[str]:
    """The shortest right trajectory: each gold fact looked up in order, the calculation, the answer."""
    return noisy_actions(world, question, random.Random(0), p_error=0.0)


def _hop(world: World, rng: random.Random, cur: str, rel: str, p_error: float, actions: list[str]) -> str:
    """Actions for one hop from `cur` (maybe corrupted); returns the entity or value the agent goes on with."""
    r = rng.random()
    if r < p_error / 3 and actions:  # redundant: repeat the last call
        actions.append(actions[-1])
    elif r < 2 * p_error / 3:  # a look-alike typo, or an entity of the right type never seen
        same_type = [e for e in world.entities if e[0] == cur[0] and e != cur]
        name = f"{cur[0]}{cur[2]}{cur[1]}" if rng.random() < 0.5 else rng.choice(same_type)
        actions.append(f"S:{name} {rel}")
        hit = resolve_lookup(world, name, rel)
        if hit and rng.random() < 0.5:  # believe the wrong fact and go on from it
            return str(hit[1])
    actions.append(f"S:{cur} {rel}")
    return str(world.facts[(cur, rel)])


def noisy_actions(world: World, question: Question, rng: random.Random, p_error: float = 0.3) -> list[str]:
    """An oracle trajectory with injected wrong, redundant and hallucinated calls (`p_error` per hop)."""
    actions: list[str] = []
    ends, known = [], {}
    for chain in question.chains:
        cur = chain.start
        for rel in chain.relations:
            if (cur, rel) in known:  # a fact the other chain already revealed
                cur = known[(cur, rel)]
            elif RELATIONS[rel] != cur[0]:  # an earlier wrong belief of another type: the chain cannot go on
                actions.append(f"S:{cur} {rel}")
            else:
                known[(cur, rel)] = cur = _hop(world, rng, cur, rel, p_error, actions)
        ends.append(cur)
    answer = ends[0]
    if question.op:
        right = ends[1] if len(ends) == 2 else str(question.constant)
        if rng.random() < p_error / 3:
            right = str(int(right) + rng.randint(1, 3)) if right.isdigit() else right
        expr = f"{ends[0]}{question.op}{right}"
        actions.append(f"C:{expr}")
        value = calculate(expr)
        answer = show_number(value) if value is not None else ends[0]
    if rng.random() < p_error / 6:
        answer = rng.choice(world.entities) if not question.op else str(int(answer) + 1 if answer.lstrip("-").isdigit() else 1)
    actions.append(f"A:{answer}")
    return actions


def grade(problem: Problem, text: str) -> tuple[str | None, bool]:
    """(answer, right) of an episode's text: the last `A:` line's answer against the problem's."""
    answers = [line[2:].strip() for line in text.splitlines() if line.startswith("A:")]
    said = answers[-1] if answers else None
    return said, said == problem.answer
