"""hopgym's exact turn labels against a brute-force re-derivation written independently here:
the question is parsed from its text, observations are recomputed from the world's fact table,
and the consistent-answer set is enumerated over every assignment of the unrevealed slots."""

from __future__ import annotations

import itertools
import math
import random
import re

import pytest

from prmkit.agents.env import run_episode
from prmkit.agents.hopgym import (HopConfig, episode_gold, label_turns, make_env, make_problem, noisy_actions,
                                  oracle_actions, world_of)
from prmkit.errors import InputError

SOURCE = {"ceo": "K", "hq": "K", "mayor": "C", "born": "P", "works": "P", "age": "P", "founded": "K", "pop": "C"}


def parse_chain(text: str) -> tuple[str, list[str]]:
    rels = []
    while m := re.fullmatch(r"([a-z]+)\((.*)\)", text):
        rels.insert(0, m.group(1))
        text = m.group(2)
    return text, rels


def parse_question(prompt: str):
    body = prompt.strip()[2:]
    depth, cut = 0, None
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch in "+-" and i > 0:
            cut = i
    if cut is None:
        return [parse_chain(body)], "", None
    left, op, right = body[:cut], body[cut], body[cut + 1:]
    if right.isdigit():
        return [parse_chain(left)], op, int(right)
    return [parse_chain(left), parse_chain(right)], op, None


def brute(world, prompt: str, actions: list[str]) -> list[dict]:
    facts, names = world.facts, set(world.entities)
    chains, op, const = parse_question(prompt)
    gold_chains = []
    for start, rels in chains:
        cur, path = start, []
        for r in rels:
            path.append((cur, r, facts[(cur, r)]))
            cur = facts[(cur, r)]
        gold_chains.append(path)
    gold = {f for path in gold_chains for f in path}

    def combine(values):
        if not op:
            return str(values[0])
        b = values[1] if len(values) == 2 else const
        return str(eval(f"{values[0]}{op}({b})"))  # the test's own arithmetic

    answer = combine([path[-1][2] for path in gold_chains])

    def answer_set(revealed):
        domains = []
        for (start, rels), path in zip(chains, gold_chains):
            if path[-1] in revealed:
                domains.append([path[-1][2]])
            else:
                domains.append(sorted({v for (e, r), v in facts.items() if r == rels[-1]}, key=str))
        return {combine(list(vals)) for vals in itertools.product(*domains)}

    ents = {start for start, _ in chains}
    nums = {str(const)} if const is not None else set()
    revealed, results, out = set(), set(), []
    size = len(answer_set(revealed))
    for a in actions:
        row = dict(valid=False, useful=False, redundant=False, hallucinated=False, off_path=False)
        if re.fullmatch(r"S:[A-Z]\d\d [a-z]+", a):
            name, rel = a[2:].split(" ")
            row["kind"] = "lookup"
            row["hallucinated"] = name not in ents
            real = name if name in names else name[0] + name[2] + name[1]
            fact = (real, rel, facts[(real, rel)]) if real in names and SOURCE.get(rel) == real[0] else None
            row["valid"] = name in names and SOURCE.get(rel) == name[0]
            if row["valid"]:
                if fact in revealed:
                    row["redundant"] = True
                elif fact in gold:
                    row["useful"] = True
                else:
                    row["off_path"] = True
            if fact:
                revealed.add(fact)
                ents.add(fact[0])
                (nums if isinstance(fact[2], int) else ents).add(str(fact[2]))
        elif re.fullmatch(r"C:[0-9+\-*/() ]+", a):
            row["kind"] = "calc"
            expr = a[2:]
            try:
                from fractions import Fraction
                value = eval(re.sub(r"(\d+)", r"Fraction(\1)", expr), {"Fraction": Fraction})
                result = str(value)
            except Exception:
                result = None
            unseen = any(n not in nums for n in re.findall(r"\d+", expr))
            row["valid"] = result is not None
            row["hallucinated"] = unseen
            if result is not None and not unseen:
                if op and result == answer and result not in results:
                    row["useful"] = True
                elif result in results:
                    row["redundant"] = True
                else:
                    row["off_path"] = True
            if result is not None:
                results.add(result)
                nums.add(result)
        elif re.fullmatch(r"A:\S+", a):
            row["kind"] = "answer"
            row["valid"] = True
            row["useful"] = a[2:] == answer
            row["hallucinated"] = a[2:] not in ents | nums | results
        else:
            row["kind"] = "invalid"
        row["wrong"] = (not row["valid"] or row["hallucinated"] or row["off_path"]
                        or (row["kind"] == "answer" and not row["useful"]))
        new = len(answer_set(revealed))
        row["info_gain"] = math.log(size / new)
        size = new
        known = len(gold & revealed)
        row["progress"] = known / len(gold)
        row["optimal_to_go"] = 0 if row["kind"] == "answer" else (
            len(gold) - known + (1 if op and answer not in results else 0) + 1)
        out.append(row)
        if row["kind"] == "answer":
            break
    return out


def random_actions(world, prompt, rng):
    chains, _, _ = parse_question(prompt)
    pool = list(world.entities) + [c for c, _ in chains] + ["X99", "P1"]
    acts = []
    for _ in range(rng.randint(1, 7)):
        r = rng.random()
        if r < 0.5:
            acts.append(f"S:{rng.choice(pool)} {rng.choice(sorted(SOURCE) + ['nope'])}")
        elif r < 0.7:
            acts.append(f"C:{rng.randint(1, 99)}{rng.choice('+-*/')}{rng.randint(0, 9)}")
        elif r < 0.8:
            acts.append(rng.choice(["hello", "S:", "C:1++", "C:(2", ""]))
        else:
            acts.append(f"A:{rng.choice(pool + [str(rng.randint(0, 120))])}")
    return acts


def test_labels_equal_brute_force_on_1000_episodes():
    rng = random.Random(0)
    checked = wrong_seen = 0
    for i in range(1000):
        p = make_problem(rng.choice(["train", "dev", "test"]), i)
        world, question = world_of(p)
        kind = i % 4
        actions = (random_actions(world, p.prompt, rng) if kind == 3
                   else noisy_actions(world, question, rng, p_error=[0.0, 0.4, 0.9][kind]))
        got = [t.__dict__ for t in label_turns(world, question, actions)]
        want = brute(world, p.prompt, actions)
        assert len(got) == len(want), (p.prompt, actions)
        for t, (g, w) in enumerate(zip(got, want)):
            for key, value in w.items():
                if key == "info_gain":
                    assert g[key] == pytest.approx(value, abs=1e-9), (p.prompt, actions, t, key)
                else:
                    assert g[key] == value, (p.prompt, actions, t, key, g, w)
        checked += len(got)
        wrong_seen += any(w["wrong"] for w in want)
    assert checked > 3000 and wrong_seen > 300  # corrupted episodes were really exercised


def test_oracle_succeeds_error_free_in_optimal_turns():
    for i in range(200):
        p = make_problem("test", i)
        world, question = world_of(p)
        actions = oracle_actions(world, question)
        gold = episode_gold(world, question, actions)
        assert gold["success"] and gold["first_error"] == -1
        assert len(actions) == gold["optimal_turns"]
        assert gold["turns"][0]["optimal_to_go"] == gold["optimal_turns"] - 1
        # the information gained over the episode is the prior's whole entropy: the answer set ends a singleton
        assert sum(t["info_gain"] for t in gold["turns"]) > 0


def test_hand_built_episode():
    """A two-hop question worked by hand on a fixed world."""
    p = make_problem("dev", 0)
    world, question = world_of(p)
    assert p.prompt == "Q:works(ceo(works(P62)))\n" and p.answer == "K18"
    actions = ["S:P26 works", "S:P62 works", "S:P62 works", "S:K58 ceo", "S:P68 works", "A:K18"]
    _, turns, finished = run_episode(make_env(p), actions)
    assert finished and [t.observation for t in turns][1:5] == [
        "O:P62 works K58", "O:P62 works K58", "O:K58 ceo P68", "O:P68 works K18"]
    gold = label_turns(world, question, actions)
    assert [g.kind for g in gold] == ["lookup"] * 5 + ["answer"]
    assert gold[1].useful and gold[2].redundant and gold[3].useful and gold[4].useful and gold[5].useful
    # P26 is P62's look-alike and exists: a valid lookup, but of an entity never seen and off the gold path
    assert world.lookalike["P62"] == "P26" and "P26" in world.entities
    assert (gold[0].valid, gold[0].hallucinated, gold[0].off_path, gold[0].wrong) == (True, True, True, True)
    assert [g.wrong for g in gold[1:]] == [False] * 5
    n_companies = len({v for (e, r), v in world.facts.items() if r == "works"})
    assert gold[4].info_gain == pytest.approx(math.log(n_companies))  # only the last hop fixes the answer
    assert [g.progress for g in gold[1:5]] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 1.0])


def test_prompt_mismatch_is_refused():
    p = make_problem("dev", 1)
    p.prompt = "Q:age(P11)\n"
    with pytest.raises(InputError, match="prompt"):
        world_of(p)


def test_knobs_change_difficulty():
    easy = HopConfig(min_hops=1, max_hops=1, arithmetic=0.0)
    for i in range(50):
        _, q = world_of(make_problem("train", i, easy))
        assert len(q.chains) == 1 and len(q.chains[0].relations) == 1 and not q.op
