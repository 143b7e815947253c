"""Exact turn-level gold for hopgym episodes.

The gym knows the facts the answer needs (F*) and what each observation revealed, so for every
turn it computes:

* `kind`: lookup, calc, answer or invalid (unparseable);
* `valid`: parses and names a known entity with a relation of its type (a lookup of a name that
  does not exist is invalid, even though the look-alike fallback answers it);
* `hallucinated`: uses an entity or a number never seen (not in the question, an observation or an
  earlier result);
* `useful`: reveals a fact of F* not yet revealed, or computes the gold answer from seen operands;
* `redundant`: repeats a fact or a result already revealed;
* `off_path`: a valid lookup of a fact outside F*, or a calculation with another result;
* `wrong`: invalid, hallucinated, off path, or a wrong answer — the first wrong turn is the
  episode's first error (-1 when none);
* `info_gain`: log|A_{t-1}| - log|A_t|, where A_t is the set of answers consistent with the facts
  revealed after turn t under a uniform prior over each unrevealed slot (a chain's last value
  ranges over every value its relation takes in the world);
* `progress`: share of F* revealed after the turn; `optimal_to_go`: fewest turns still needed
  (unrevealed facts, the calculation when the question needs one, the answer).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from prmkit.agents.hopgym.tools import ANSWER_RE, CALC_RE, LOOKUP_RE, calculate, resolve_lookup
from prmkit.agents.hopgym.world import RELATIONS, Question, World

NUMBER_RE = re.compile(r"\d+")


@dataclass
class TurnGold:
    kind: str
    valid: bool
    useful: bool
    redundant: bool
    hallucinated: bool
    off_path: bool
    wrong: bool
    info_gain: float
    progress: float
    optimal_to_go: int


def consistent_answers(world: World, question: Question, revealed: set) -> set[str]:
    """A_t: answers consistent with `revealed` facts, each unrevealed chain end uniform over its range."""
    ends = []
    for chain in question.chains:
        last = chain.facts[-1]
        ends.append({last[2]} if last in revealed else world.value_range(chain.relations[-1]))
    if not question.op:
        return {str(v) for v in ends[0]}
    rights = ends[1] if len(ends) == 2 else {question.constant}
    sign = 1 if question.op == "+" else -1
    return {str(a + sign * b) for a in ends[0] for b in rights}


class _State:
    """What the agent has seen so far."""

    def __init__(self, question: Question):
        self.entities = {c.start for c in question.chains}
        self.numbers = {str(question.constant)} if question.constant is not None else set()
        self.revealed: set = set()
        self.results: set[str] = set()

    def see(self, entity: str, relation: str, value) -> None:
        self.revealed.add((entity, relation, value))
        self.entities.add(entity)
        (self.numbers if isinstance(value, int) else self.entities).add(str(value))


def _lookup(world: World, gold: set, state: _State, name: str, relation: str) -> dict:
    valid = name in world.entities and RELATIONS.get(relation) == name[0]
    hit = resolve_lookup(world, name, relation)
    fact = (hit[0], relation, hit[1]) if hit else None
    flags = {"valid": valid, "hallucinated": name not in state.entities,
             "useful": valid and fact in gold and fact not in state.revealed,
             "redundant": valid and fact in state.revealed}
    flags["off_path"] = valid and not flags["useful"] and not flags["redundant"]
    if fact:
        state.see(*fact)
    return flags


def _calc(question: Question, state: _State, expr: str) -> dict:
    value = calculate(expr)
    result = None if value is None else (str(value.numerator) if value.denominator == 1 else str(value))
    unseen = any(n not in state.numbers for n in NUMBER_RE.findall(expr))
    useful = (result is not None and question.needs_arithmetic and result == question.answer
              and not unseen and result not in state.results)
    redundant = result is not None and not unseen and result in state.results
    flags = {"valid": value is not None, "hallucinated": unseen, "useful": useful, "redundant": redundant,
             "off_path": value is not None and not unseen and not useful and not redundant}
    if result is not None:
        state.results.add(result)
        state.numbers.add(result)
    return flags


def label_turns(world: World, question: Question, actions: list[str]) -> list[TurnGold]:
    """Exact gold for each action of an episode (actions after the answer are not labelled)."""
    gold, state, out = set(question.gold_facts), _State(question), []
    size = len(consistent_answers(world, question, state.revealed))
    for action in actions:
        if m := LOOKUP_RE.match(action):
            kind, flags = "lookup", _lookup(world, gold, state, m.group(1), m.group(2))
        elif m := CALC_RE.match(action):
            kind, flags = "calc", _calc(question, state, m.group(1))
        elif m := ANSWER_RE.match(action):
            said = m.group(1)
            right = said == question.answer
            kind = "answer"
            flags = {"valid": True, "hallucinated": said not in state.entities | state.numbers | state.results,
                     "useful": right, "redundant": False, "off_path": False}
        else:
            kind, flags = "invalid", {"valid": False, "hallucinated": False, "useful": False,
                                      "redundant": False, "off_path": False}
        wrong = (not flags["valid"] or flags["hallucinated"] or flags["off_path"]
                 or (kind == "answer" and not flags["useful"]))
        new_size = len(consistent_answers(world, question, state.revealed))
        missing = sum(1 for f in gold if f not in state.revealed)
        calc_left = int(question.needs_arithmetic and question.answer not in state.results)
        to_go = 0 if kind == "answer" else missing + calc_left + 1
        out.append(TurnGold(kind=kind, wrong=wrong, info_gain=math.log(size) - math.log(new_size),
                            progress=(len(gold) - missing) / len(gold), optimal_to_go=to_go, **flags))
        size = new_size
        if kind == "answer":
            break
    return out


def episode_gold(world: World, question: Question, actions: list[str]) -> dict:
    """Per-turn gold plus the episode's outcome, first wrong turn and success path."""
    turns = label_turns(world, question, actions)
    finished = bool(turns) and turns[-1].kind == "answer"
    success = finished and turns[-1].useful
    first = next((i for i, t in enumerate(turns) if t.wrong), -1)
    optimal = len(question.gold_facts) + int(question.needs_arithmetic) + 1
    return {"turns": [asdict(t) for t in turns], "finished": finished, "success": success,
            "first_error": first, "optimal_turns": optimal}


def observation_relevance(question: Question, observations: list[str]) -> list[float]:
    """1.0 for an observation that shows a fact the answer needs (`O:<entity> <relation> <value>` of F*) or
    states the gold answer (`O:<answer>`, a calculation's result), else 0.0: the gym's exact stand-in for
    a reranker's relevance of the gold answer to the information (ReSeek, arXiv 2510.00568)."""
    needed = {f"O:{e} {r} {v}" for e, r, v in question.gold_facts} | {f"O:{question.answer}"}
    return [1.0 if obs in needed else 0.0 for obs in observations]
