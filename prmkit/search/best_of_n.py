"""Best-of-N: N independent whole solutions per problem, every step scored by the reward model,
one selected by argmax, majority vote or score-weighted vote over the aggregated scores
(docs/methods.md, search-and-learn; Snell et al., arXiv 2408.03314; search-and-learn `best_of_n`)."""

from __future__ import annotations

from typing import Sequence

from prmkit.schema import Problem
from prmkit.search.base import (
    SearchParams,
    SearchRun,
    aggregation_of,
    derive_seed,
    finish,
    make_solution,
    score_prefixes,
    start,
)
from prmkit.search.registry import search_strategy


@search_strategy("best_of_n")
def best_of_n(problems: Sequence[Problem], sampler, rm, params: SearchParams) -> SearchRun:
    meter, policy = start(sampler, rm, params, problems)
    how = aggregation_of(rm, params)
    seeds = [derive_seed(params.seed, p.id, "bon") for p in problems]
    outs = policy.expand([policy.render(p.prompt) for p in problems], range(len(problems)), seeds, params.n, whole=True)
    flat = [(i, o) for i, row in enumerate(outs) for o in row]
    scored = score_prefixes(rm, [problems[i].prompt for i, _ in flat], [o.steps for _, o in flat], how)
    pools: list[list] = [[] for _ in problems]
    for (i, o), (sc, _) in zip(flat, scored):
        pools[i].append(make_solution(problems[i], o.steps, sc, how, policy.sep))
        pools[i][-1].tokens = o.tokens
    return finish("best_of_n", params, problems, pools, policy, meter)


def subsample(run: SearchRun, k: int, rule: str | None = None) -> dict:
    """Best-of-k from a best-of-N run (k <= N): each problem's first k candidates, as
    search-and-learn's `score()` subsamples n = 1, 2, 4, ... from one pool. Policy tokens are the
    first k candidates' own; PRM tokens are apportioned as k/N of the run's (each candidate is
    scored once)."""
    from prmkit.search.base import select, task_equivalence

    n = run.params.n
    if not 1 <= k <= n:
        raise ValueError(f"expected 1 <= k <= {n}, got {k}")
    correct = tokens = 0
    for r in run.results:
        pool = r.solutions[:k]
        c = select(pool, rule or run.params.select, task_equivalence(r.problem))
        correct += bool(pool[c].correct) if c >= 0 else 0
        tokens += sum(s.tokens for s in pool)
    c = run.compute
    prm_tokens = c.prm_tokens * k / n
    flops = 2.0 * (c.policy_parameters * tokens + c.prm_parameters * prm_tokens)
    m = max(1, len(run.results))
    return {"accuracy": correct / m, "policy_tokens_per_problem": tokens / m, "prm_tokens_per_problem": prm_tokens / m,
            "flops_per_problem": flops / m}
