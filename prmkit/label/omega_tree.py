"""OmegaPRM tree mode (OmegaPRM, arXiv 2406.06592): many labelled prefixes per question.

Per question: estimate MC of the question alone (K rollouts); wrong rollouts from states with
0 < MC < 1 enter a candidate pool.  Repeatedly pick the pool entry with the highest
Q(s, r) + U(s) (`rules.omega_select_score`: α^(1−MC(s))·β^(len(r)/L) + c_puct·sqrt(Σ N)/(1+N(s))),
binary-search its steps for the first prefix with MC = 0 (each probed prefix becomes a tree node
with its MC estimate, and its own wrong rollouts join the pool when 0 < MC < 1), then bump N(s).
Stops after `search_limit` selections or when the pool is empty.  Correct rollouts are recorded
as nodes with MC 1 (no extra rollouts); nodes with MC = 0 are never expanded.

Each node becomes a Trace whose steps are the node's prefix and whose labels are the MC
estimates of the prefixes on its path that are tree nodes (None elsewhere): soft labels,
`method` "omega_tree".  Rollout lengths are measured in policy tokens (`L` = 500 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prmkit.label import rules
from prmkit.label.rollouts import AnswerKey, Probe, RolloutConfig, estimate
from prmkit.schema import StepLabels, Trace
from prmkit.steps import split_steps


@dataclass
class Node:
    steps: tuple[str, ...]
    mc: float
    parent: int
    estimated: bool  # MC from K rollouts (False: a correct rollout recorded with MC 1)
    rollouts: int = 0
    tokens: int = 0
    visits: int = 0
    children: list[int] = field(default_factory=list)


@dataclass
class TreeParams:
    search_limit: int = 20
    c_puct: float = 0.125
    alpha: float = 0.5
    beta: float = 0.9
    L: float = 500.0


def _state_trace(problem_id: str, prompt: str, steps: tuple[str, ...], key: AnswerKey, sep: str) -> Trace:
    text = sep.join(steps)
    ans = key.grader.extract_answer(text) if steps else None  # type: ignore[attr-defined]
    outcome = None if ans is None else float(key.grader.is_correct(ans, key.answer))  # type: ignore[attr-defined]
    return Trace(problem_id=problem_id, prompt=prompt, steps=list(steps) or [""], final_answer=ans, outcome=outcome)


def build_tree(index: int, problem_id: str, prompt: str, key: AnswerKey, sampler, rc: RolloutConfig,
               tp: TreeParams | None = None) -> list[Node]:
    """The OmegaPRM search tree of one question; node 0 is the question alone."""
    tp = tp or TreeParams()
    nodes: list[Node] = []
    pool: list[tuple[int, tuple[str, ...], int]] = []  # (state node, rollout steps, rollout tokens)

    def add(steps: tuple[str, ...], parent: int) -> int:
        t = _state_trace(problem_id, prompt, steps, key, rc.sep)
        prefix = len(steps) - 1
        r = estimate(sampler, [Probe(index, t, key, prefix, tag=f"tree{len(nodes)}")], rc)[0]
        nid = len(nodes)
        nodes.append(Node(steps, r.mc, parent, True, r.rollouts, r.tokens))
        if parent >= 0:
            nodes[parent].children.append(nid)
        for text, ok, ntok in r.samples or []:
            cont = tuple(split_steps(text, rc.sep))
            if not cont:
                continue
            if ok:
                cid = len(nodes)
                nodes.append(Node(steps + cont, 1.0, nid, False))
                nodes[nid].children.append(cid)
            elif 0.0 < r.mc < 1.0:
                pool.append((nid, cont, ntok))
        return nid

    add((), -1)
    for _ in range(tp.search_limit):
        if not pool:
            break
        total = sum(n.visits for n in nodes)
        best = max(range(len(pool)), key=lambda i: (rules.omega_select_score(
            nodes[pool[i][0]].mc, pool[i][2], nodes[pool[i][0]].visits, total, alpha=tp.alpha, beta=tp.beta,
            L=tp.L, c_puct=tp.c_puct), -i))
        s, rollout, _ = pool.pop(best)
        nodes[s].visits += 1
        cur, lo, hi = s, 1, len(rollout)
        while lo <= hi:  # OmegaPRM, arXiv 2406.06592: the first prefix of the rollout whose MC is 0
            mid = (lo + hi) // 2
            nid = add(nodes[s].steps + rollout[:mid], cur)
            if nodes[nid].mc > 0:
                cur, lo = nid, mid + 1
            else:
                hi = mid - 1
    return nodes


def tree_traces(nodes: list[Node], problem_id: str, prompt: str, k: int) -> list[Trace]:
    """One soft-labelled Trace per non-root node (MC of the node prefixes on its path)."""
    by_steps = {n.steps: n.mc for n in nodes}
    out = []
    for i, n in enumerate(nodes[1:], 1):
        values = [by_steps.get(n.steps[:j + 1]) for j in range(len(n.steps))]
        cost_r = n.rollouts + (nodes[0].rollouts if i == 1 else 0)  # the root's cost goes to the first record
        cost_t = n.tokens + (nodes[0].tokens if i == 1 else 0)
        out.append(Trace(problem_id=problem_id, prompt=prompt, steps=list(n.steps), labels=StepLabels(
            values=values, method="omega_tree", rollouts=cost_r, policy_tokens=cost_t,
            meta={"k": k, "node": i, "parent": n.parent, "estimated": n.estimated, "root_mc": nodes[0].mc})))
    return out
