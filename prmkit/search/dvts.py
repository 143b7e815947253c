"""DVTS — diverse verifier tree search (search-and-learn; Snell et al., arXiv 2408.03314; search-and-learn `dvts`).

The budget N is split into N/M independent subtrees per problem. Each subtree samples M
candidate next steps, the PRM scores each prefix (plus optional greedy lookahead), and the
subtree commits only its best candidate: greedy on the PRM, diverse because subtrees never
compete. A subtree stops when its chosen step ends the solution; it then contributes all M
candidates of its last expansion to the problem's pool (N candidates in all), from which the
answer is selected by `params.select`.
"""

from __future__ import annotations

from typing import Sequence

from prmkit.progress import progress
from prmkit.schema import Problem
from prmkit.search.base import (
    SearchParams,
    SearchRun,
    Solution,
    aggregation_of,
    derive_seed,
    finish,
    make_solution,
    start,
)
from prmkit.search.beam import Beam, score_candidates
from prmkit.search.registry import search_strategy


@search_strategy("dvts")
def dvts(problems: Sequence[Problem], sampler, rm, params: SearchParams) -> SearchRun:
    meter, policy = start(sampler, rm, params, problems)
    how, M = aggregation_of(rm, params), params.beam_width
    trees = max(1, params.n // M)
    # (problem, subtree) -> committed prefix; a subtree leaves `live` when its chosen step ends
    live: dict[tuple[int, int], Beam] = {(i, j): Beam([], [], 0.0) for i in range(len(problems)) for j in range(trees)}
    pools: list[list[Solution]] = [[] for _ in problems]
    for t in progress(range(params.max_steps), desc="dvts (rounds)"):
        if not live:
            break
        last = t == params.max_steps - 1
        keys = sorted(live)
        outs = policy.expand([policy.prefix(problems[i].prompt, live[(i, j)].steps) for i, j in keys],
                             [i for i, _ in keys], [derive_seed(params.seed, problems[i].id, "dvts", t, j)
                                                    for i, j in keys], M, whole=last)
        owners, cands = [], []
        for (i, j), row in zip(keys, outs):
            for o in row:
                owners.append(i)
                cands.append(Beam(live[(i, j)].steps + o.steps, [], 0.0, ended=o.ended or last))
        score_candidates(policy, rm, problems, owners, cands, how, params.lookahead)
        for k, (i, j) in enumerate(keys):
            group = cands[k * M:(k + 1) * M]
            best = max(range(M), key=lambda c: (group[c].score, -c))  # ties: the first candidate
            if group[best].ended:
                del live[(i, j)]
                pools[i] += [make_solution(problems[i], c.steps, c.step_scores, how, policy.sep, finished=c.ended)
                             for c in group]
            else:
                live[(i, j)] = group[best]
    for (i, j), b in live.items():  # only when max_steps ran out mid-step (not reachable: the last round ends all)
        pools[i].append(make_solution(problems[i], b.steps, b.step_scores, how, policy.sep, finished=False))
    return finish("dvts", params, problems, pools, policy, meter)
