"""ReST-MCTS*-style tree search guided by a PRM / process value model (ReST-MCTS*, arXiv 2406.03816;
Zhang et al. 2024, arXiv 2406.03816).

One tree per problem; a node is a step, its prefix's PRM score (aggregated) is its prior value.
Each iteration, for every unfinished problem at once:
  select   — walk from the root by UCT, Q + c sqrt(ln(N_parent + 1) / (N_child + 1)), where Q is the
             node's mean backed-up value (its prior while unvisited); finished steps are not entered;
  expand   — sample `branch` next steps from the leaf; the PRM scores each child's prefix; a sample
             whose step text equals a sibling's is merged into it (`merge_siblings`; no new node);
  rollout  — the best new child is rolled forward `rollout_steps` greedy steps and its value moved
             toward the rollout's: V <- (1 - alpha) V + alpha V_rollout; a rollout that reaches the
             end is kept as a candidate solution;
  backup   — the best new child's value is added to every node on the path.
With progressive widening (`widen` = alpha > 0; Coulom 2007, Couetoux et al. 2011) an expanded node
visited N times is expanded again, with `branch` fresh samples, while it holds fewer than
branch * ceil((N + 1) ** alpha) children; a node whose expansion brought no new distinct step is not
widened again. widen = 0 is ReST-MCTS*'s fixed branching.
With value-gated widening (`widen_gate` = g > 0), made for verifiers that read steps well: children
valued below g are never entered; a node with no unfinished, open child valued >= g is expanded again
(`branch` fresh samples) instead of entered, until it has been expanded `max_expansions` times (or,
without a cap, until an expansion brings no new distinct step); then it is a dead end, closed like an
exhausted node, and the search backs out of it.
With no rollouts and a small c this searches best first: deep along steps the verifier accepts, more
samples only where it rejects them all.
A problem stops when a finished solution scores >= `end_gate`, its policy tokens reach
`token_budget`, or after `max_iterations`. The answer is selected by `params.select` among the
finished solutions (tree leaves and completed rollouts); a problem with none gets one greedy
completion from its best node. `result.meta["tree"]` is the whole tree (rollouts included), which
`label.mcts_values.tree_nodes` turns into `label.rules.TreeNode`s for `rest_mcts_value_targets`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from prmkit.progress import progress
from prmkit.schema import Problem
from prmkit.search.base import (
    MCTSParams,
    SearchParams,
    SearchRun,
    aggregation_of,
    derive_seed,
    finish,
    make_solution,
    score_prefixes,
    start,
)
from prmkit.search.beam import extend_greedy
from prmkit.search.registry import search_strategy



@dataclass
class Node:
    parent: int
    steps: list[str]         # the whole prefix, root = []
    prior: float = 0.0       # PRM value of the prefix (moved toward its rollout's value)
    step_scores: list[float] = field(default_factory=list)
    value_sum: float = 0.0
    visits: int = 0
    children: list[int] = field(default_factory=list)
    terminal: bool = False
    expanded: bool = False
    exhausted: bool = False  # every child finished or exhausted: nothing left to expand below
    saturated: bool = False  # an expansion brought no new distinct step: not widened again
    expansions: int = 0


def uct(q: float, c: float, parent_visits: int, visits: int) -> float:
    """UCT score Q + c sqrt(ln(N_parent + 1) / (N + 1)) (Kocsis & Szepesvari 2006; ReST-MCTS* c = 0.7)."""
    return q + c * math.sqrt(math.log(parent_visits + 1) / (visits + 1))


def children_allowed(branch: int, visits: int, widen: float) -> int:
    """Progressive widening (Couetoux et al. 2011): a node visited N times may hold
    branch * ceil((N + 1) ** widen) children; widen = 0 gives the fixed `branch`."""
    return branch * math.ceil((visits + 1) ** widen - 1e-9)


class Tree:
    def __init__(self):
        self.nodes = [Node(-1, [])]
        self.rollouts: list[tuple[int, list[str], list[float], float]] = []  # (from node, steps, scores, value)

    def q(self, k: int) -> float:
        n = self.nodes[k]
        return n.value_sum / n.visits if n.visits else n.prior

    def select(self, c: float, branch: int = 1, widen: float = 0.0, gate: float = 0.0,
               max_expansions: int = 0) -> int | None:
        """The node to expand (an unexpanded leaf, a node due for more children by progressive widening
        (`widen` > 0) or by value-gated widening (`gate` > 0)), or None when the whole tree is exhausted."""
        k = 0
        while self.nodes[k].expanded:
            node = self.nodes[k]
            can_widen = node.expansions < max_expansions if max_expansions else not node.saturated
            if widen > 0 and can_widen and len(node.children) < children_allowed(branch, node.visits, widen):
                return k
            open_ = [j for j in node.children if not self.nodes[j].terminal and not self.nodes[j].exhausted]
            if gate > 0:
                open_ = [j for j in open_ if self.nodes[j].prior >= gate]
                if not open_ and can_widen:
                    return k
            if not open_:
                node.exhausted = True
                if k == 0:
                    return None
                k = 0  # restart from the root with this branch closed
                continue
            k = max(open_, key=lambda j: (uct(self.q(j), c, node.visits, self.nodes[j].visits), -j))
        return k

    def backup(self, k: int, v: float) -> None:
        while k != -1:
            self.nodes[k].value_sum += v
            self.nodes[k].visits += 1
            k = self.nodes[k].parent


def _expand(policy, rm, problems, params: SearchParams, knobs: MCTSParams, how, it, trees, leaves) -> None:
    """Expansion, PRM evaluation, rollout and backup of one leaf per live problem (`params`: the shared knobs,
    `knobs`: MCTS's own)."""
    todo = sorted(leaves.items())
    depth_left = [params.max_steps - len(trees[i].nodes[k].steps) for i, k in todo]
    outs = policy.expand([policy.prefix(problems[i].prompt, trees[i].nodes[k].steps) for i, k in todo],
                         [i for i, _ in todo], [derive_seed(params.seed, problems[i].id, "mcts", it) for i, _ in todo],
                         knobs.branch, whole=False)
    new: list[tuple[int, int]] = []
    fresh: dict[int, list[int]] = {}  # problem -> its new children
    for (i, k), row, left in zip(todo, outs, depth_left):
        tree = trees[i]
        parent = tree.nodes[k]
        parent.expanded = True
        parent.expansions += 1
        seen = {(tuple(tree.nodes[j].steps), tree.nodes[j].terminal) for j in parent.children}
        fresh[i] = []
        for o in row:
            steps, terminal = parent.steps + o.steps, o.ended or left <= 1
            if knobs.merge_siblings and (tuple(steps), terminal) in seen:
                continue
            seen.add((tuple(steps), terminal))
            tree.nodes.append(Node(k, steps, terminal=terminal))
            parent.children.append(len(tree.nodes) - 1)
            new.append((i, len(tree.nodes) - 1))
            fresh[i].append(len(tree.nodes) - 1)
        if not fresh[i]:
            parent.saturated = True
    scored = score_prefixes(rm, [problems[i].prompt for i, _ in new],
                            [trees[i].nodes[j].steps for i, j in new], how)
    for (i, j), (sc, agg) in zip(new, scored):
        trees[i].nodes[j].step_scores, trees[i].nodes[j].prior = sc, agg
    _rollout(policy, rm, problems, knobs, how, trees, fresh)
    for i, k in todo:
        kids = fresh[i] or trees[i].nodes[k].children   # nothing new (all merged): the existing children
        trees[i].backup(k, max(trees[i].nodes[j].prior for j in kids))


def _rollout(policy, rm, problems, knobs: MCTSParams, how, trees, fresh) -> None:
    if not knobs.rollout_steps:
        return
    picks = []
    for i, kids in sorted(fresh.items()):
        kids = [j for j in kids if not trees[i].nodes[j].terminal]
        if kids:
            picks.append((i, max(kids, key=lambda j: (trees[i].nodes[j].prior, -j))))
    if not picks:
        return
    ext, ended = extend_greedy(policy, problems, [i for i, _ in picks],
                               [trees[i].nodes[j].steps for i, j in picks], knobs.rollout_steps)
    scored = score_prefixes(rm, [problems[i].prompt for i, _ in picks], ext, how)
    a = knobs.rollout_alpha
    for (i, j), steps, end, (sc, v) in zip(picks, ext, ended, scored):
        node = trees[i].nodes[j]
        if len(steps) > len(node.steps) and v > float("-inf"):
            node.prior = (1 - a) * node.prior + a * v
        if end:
            trees[i].rollouts.append((j, steps, sc, v))


def _finished(tree: Tree) -> list[tuple[list[str], list[float], float]]:
    out = [(n.steps, n.step_scores, n.prior) for n in tree.nodes[1:] if n.terminal and n.steps]
    return out + [(s, sc, v) for _, s, sc, v in tree.rollouts]


@search_strategy("mcts")
def mcts(problems: Sequence[Problem], sampler, rm, params: SearchParams) -> SearchRun:
    knobs = params.mcts
    meter, policy = start(sampler, rm, params, problems)
    how = aggregation_of(rm, params)
    trees = [Tree() for _ in problems]
    live = set(range(len(problems)))
    for it in progress(range(knobs.max_iterations), desc="mcts (iterations)"):
        leaves = {}
        for i in sorted(live):
            over = knobs.token_budget and policy.tokens_by_problem[i] >= knobs.token_budget
            gated = any(v >= knobs.end_gate for _, _, v in _finished(trees[i]))
            leaf = None if over or gated else trees[i].select(knobs.c_uct, knobs.branch, knobs.widen,
                                                               knobs.widen_gate, knobs.max_expansions)
            if leaf is None:
                live.discard(i)
            else:
                leaves[i] = leaf
        if not leaves:
            break
        _expand(policy, rm, problems, params, knobs, how, it, trees, leaves)
    _complete_empty(policy, rm, problems, how, trees)
    pools, metas = [], []
    for i, tree in enumerate(trees):
        pools.append([make_solution(problems[i], s, sc, how, policy.sep) for s, sc, _ in _finished(tree)])
        metas.append({"tree": export_tree(tree, problems[i], policy.sep), "iterations": tree.nodes[0].visits})
    return finish("mcts", params, problems, pools, policy, meter, metas)


def _complete_empty(policy, rm, problems, how, trees) -> None:
    """A problem that found no finished solution gets one greedy completion from its best node."""
    todo = [i for i, t in enumerate(trees) if not _finished(t)]
    if not todo:
        return
    best = [max(range(len(trees[i].nodes)), key=lambda k: (trees[i].nodes[k].prior if k else -1e9, -k)) for i in todo]
    outs = policy.expand([policy.prefix(problems[i].prompt, trees[i].nodes[k].steps)
                          for i, k in zip(todo, best)], todo, [0] * len(todo), 1, greedy=True, whole=True)
    steps = [trees[i].nodes[k].steps + row[0].steps for i, k, row in zip(todo, best, outs)]
    for i, k, s, (sc, v) in zip(todo, best, steps, score_prefixes(rm, [problems[i].prompt for i in todo], steps, how)):
        trees[i].rollouts.append((k, s, sc, v))


def export_tree(tree: Tree, problem: Problem, sep: str) -> list[dict]:
    """The tree as records (node 0 = root): parent, step text (the node's last step), depth (steps in its
    prefix; a node that ended with an empty step has its parent's depth), prior, visits, Q, terminal,
    correct. Completed rollouts are appended as chains of nodes below the node they started from."""
    from prmkit.search.base import grade

    out = []
    for n in tree.nodes:
        rec = {"parent": n.parent, "step": n.steps[-1] if n.steps else "", "depth": len(n.steps), "prior": n.prior,
               "visits": n.visits, "q": n.value_sum / n.visits if n.visits else None, "terminal": n.terminal,
               "correct": False, "rollout": False}
        if n.terminal and n.steps:
            rec["correct"] = grade(problem, n.steps, sep)[1]
        out.append(rec)
    for start_node, steps, _, v in tree.rollouts:
        parent = start_node
        base = len(tree.nodes[start_node].steps)
        for d, s in enumerate(steps[base:]):
            end = d == len(steps) - base - 1
            out.append({"parent": parent, "step": s, "depth": base + d + 1, "prior": v if end else None, "visits": 0,
                        "q": None, "terminal": end, "correct": end and grade(problem, steps, sep)[1], "rollout": True})
            parent = len(out) - 1
    return out
