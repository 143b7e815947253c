"""Best-of-N: N independent whole solutions per problem, every step scored by the reward model,
one selected by argmax, majority vote or score-weighted vote over the aggregated scores
(METHODS §0.4, §12.2; search-and-learn `best_of_n`)."""

from __future__ import annotations

from typing import Sequence

from prmkit.schema import Problem
from prmkit.search.base import (SearchParams, SearchRun, aggregation_of, derive_seed, finish, make_solution,
                                score_prefixes, start)


def best_of_n(problems: Sequence[Problem], sampler, rm, params: SearchParams) -> SearchRun:
    meter, policy = start(sampler, rm, params, problems)
    how = aggregation_of(rm, params)
    seeds = [derive_seed(params.seed, p.id, "bon") for p in problems]
    outs = policy.expand([p.prompt for p in problems], range(len(problems)), seeds, params.n, whole=True)
    flat = [(i, o) for i, row in enumerate(outs) for o in row]
    scored = score_prefixes(rm, [problems[i].prompt for i, _ in flat], [o.steps for _, o in flat], how)
    pools: list[list] = [[] for _ in problems]
    for (i, o), (sc, _) in zip(flat, scored):
        pools[i].append(make_solution(problems[i], o.steps, sc, how, policy.sep))
    return finish("best_of_n", params, problems, pools, policy, meter)
