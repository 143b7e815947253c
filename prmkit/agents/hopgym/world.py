"""hopgym's world: a seeded knowledge graph of people, cities and companies, and multi-hop questions.

Every problem carries its own world, regenerated from the problem's seed. Entities are named by a
type letter and two digits (`P07`, `C12`, `K31`); some have a *look-alike* whose digits are swapped
(`P70`), with facts of its own, so a lookup with a mistyped name can reveal the wrong entity.

Relations (source type -> value):

    ceo: K -> P    hq: K -> C    mayor: C -> P    born: P -> C    works: P -> K    (hops)
    age: P -> int  founded: K -> int  pop: C -> int                  (numbers)

A question composes `hops` relations from a start entity, e.g. `age(ceo(K31))`, and may end in
arithmetic with a constant (`age(ceo(K31))+4`) or combine two chains (`pop(hq(K31))-age(mayor(C12))`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

HOPS = {"ceo": ("K", "P"), "hq": ("K", "C"), "mayor": ("C", "P"), "born": ("P", "C"), "works": ("P", "K")}
NUMBERS = {"age": ("P", (20, 79)), "founded": ("K", (1, 99)), "pop": ("C", (10, 99))}
RELATIONS = {**{r: src for r, (src, _) in HOPS.items()}, **{r: src for r, (src, _) in NUMBERS.items()}}
TYPES = ("P", "C", "K")


@dataclass
class HopConfig:
    """Difficulty knobs of hopgym's generator."""

    entities_per_type: int = 10
    """entities of each type (people, cities, companies) before look-alikes"""
    lookalike_share: float = 0.5
    """share of entities that get a digit-swapped look-alike with facts of its own"""
    min_hops: int = 1
    """fewest relations in one chain"""
    max_hops: int = 3
    """most relations in one chain"""
    arithmetic: float = 0.5
    """probability that a question ends in arithmetic (a constant, or a second chain)"""
    two_chains: float = 0.3
    """given arithmetic, probability that it combines two chains instead of adding a constant"""


@dataclass
class World:
    """Facts `(entity, relation) -> value` (an entity name or an int)."""

    facts: dict[tuple[str, str], str | int]
    entities: list[str]
    lookalike: dict[str, str] = field(default_factory=dict)  # name -> its digit-swapped twin (both ways)

    def type_of(self, name: str) -> str:
        return name[0]

    def value_range(self, relation: str) -> set[str | int]:
        """Every value `relation` takes in this world (the prior's support for an unrevealed slot)."""
        return {v for (_, r), v in self.facts.items() if r == relation}


def _names(rng: random.Random, letter: str, n: int) -> list[str]:
    codes = rng.sample([c for c in range(10, 100) if c % 10 != c // 10 and c % 10 != 0], n)
    return [f"{letter}{c:02d}" for c in codes]


def make_world(seed: int, cfg: HopConfig) -> World:
    """The world of one problem, a pure function of (seed, cfg)."""
    rng = random.Random(seed)
    by_type: dict[str, list[str]] = {}
    lookalike: dict[str, str] = {}
    for letter in TYPES:
        names = _names(rng, letter, cfg.entities_per_type)
        twins = []
        for name in names:
            twin = f"{letter}{name[2]}{name[1]}"
            if twin not in names and twin not in twins and rng.random() < cfg.lookalike_share:
                twins.append(twin)
                lookalike[name], lookalike[twin] = twin, name
        by_type[letter] = names + twins
    facts: dict[tuple[str, str], str | int] = {}
    for rel, (src, dst) in HOPS.items():
        for name in by_type[src]:
            facts[(name, rel)] = rng.choice(by_type[dst])
    for rel, (src, (lo, hi)) in NUMBERS.items():
        for name in by_type[src]:
            facts[(name, rel)] = rng.randint(lo, hi)
    entities = sorted(n for names in by_type.values() for n in names)
    return World(facts=facts, entities=entities, lookalike=lookalike)


@dataclass
class Chain:
    """One composition: `relations[-1](...(relations[0](start)))`; `facts` the gold facts in order."""

    start: str
    relations: list[str]
    facts: list[tuple[str, str, str | int]]

    @property
    def value(self) -> str | int:
        return self.facts[-1][2]

    def text(self) -> str:
        out = self.start
        for rel in self.relations:
            out = f"{rel}({out})"
        return out


@dataclass
class Question:
    """A question over a world: one or two chains, an optional operator and constant."""

    chains: list[Chain]
    op: str = ""  # "", "+", "-"
    constant: int | None = None

    @property
    def needs_arithmetic(self) -> bool:
        return bool(self.op)

    @property
    def answer(self) -> str:
        values = [c.value for c in self.chains]
        if not self.op:
            return str(values[0])
        right = values[1] if len(values) == 2 else self.constant
        return str(values[0] + right if self.op == "+" else values[0] - right)

    @property
    def gold_facts(self) -> list[tuple[str, str, str | int]]:
        """Every fact the answer needs, once each, in chain order."""
        return list(dict.fromkeys(f for c in self.chains for f in c.facts))

    def text(self) -> str:
        body = self.chains[0].text()
        if self.op and len(self.chains) == 2:
            body += self.op + self.chains[1].text()
        elif self.op:
            body += f"{self.op}{self.constant}"
        return f"Q:{body}"


def follow(world: World, start: str, relations: list[str]) -> Chain:
    """The chain of gold facts from `start` through `relations` in `world`."""
    facts, cur = [], start
    for rel in relations:
        value = world.facts[(cur, rel)]
        facts.append((cur, rel, value))
        cur = value
    return Chain(start=start, relations=list(relations), facts=facts)


def _random_chain(rng: random.Random, world: World, hops: int, numeric: bool) -> Chain:
    """Relations typed end to end; the last one numeric when `numeric`, else a hop."""
    while True:
        last = rng.choice(sorted(NUMBERS)) if numeric else rng.choice(sorted(HOPS))
        need = RELATIONS[last]  # type the entity before the last relation must have
        rels = [last]
        for _ in range(hops - 1):
            options = sorted(r for r, (src, dst) in HOPS.items() if dst == need)
            rel = rng.choice(options)
            rels.insert(0, rel)
            need = HOPS[rel][0]
        starts = [e for e in world.entities if e[0] == need]
        chain = follow(world, rng.choice(starts), rels)
        entities_on_path = [chain.start] + [f[2] for f in chain.facts[:-1]]
        if len(set(entities_on_path)) == len(entities_on_path):  # no cycles: every hop reveals something new
            return chain


def make_question(seed: int, world: World, cfg: HopConfig) -> Question:
    """A question over `world`, a pure function of (seed, world, cfg)."""
    rng = random.Random(seed * 7919 + 1)
    arithmetic = rng.random() < cfg.arithmetic
    hops = rng.randint(cfg.min_hops, cfg.max_hops)
    first = _random_chain(rng, world, hops, numeric=arithmetic)
    if not arithmetic:
        return Question(chains=[first])
    op = rng.choice("+-")
    if rng.random() < cfg.two_chains:
        second = _random_chain(rng, world, rng.randint(cfg.min_hops, max(cfg.min_hops, hops - 1)), numeric=True)
        return Question(chains=[first, second], op=op)
    return Question(chains=[first], op=op, constant=rng.randint(1, 9))
