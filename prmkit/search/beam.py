"""Step-level beam search guided by a PRM, with optional lookahead and de-duplication
(search-and-learn; Snell et al., arXiv 2408.03314; search-and-learn `beam_search`).

N active beams per problem. Each round every active beam generates one step; the PRM scores
each prefix (with `lookahead` k > 0: the candidate extended by k greedy steps, scored but not
committed); beams that ended (EOS, empty step, last round) move to the finished pool; the top
N/M of the rest (after optional de-duplication of identical texts) survive, and each survivor
expands M ways in the next round. The last round writes each beam to its end. The answer is
selected from the finished pool by `params.select` over aggregated scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from prmkit.progress import progress
from prmkit.schema import Problem
from prmkit.search.base import (
    Policy,
    SearchParams,
    SearchRun,
    Solution,
    aggregation_of,
    derive_seed,
    finish,
    make_solution,
    score_prefixes,
    start,
)
from prmkit.search.registry import search_strategy


@dataclass
class Beam:
    steps: list[str]
    step_scores: list[float]
    score: float
    ended: bool = False


def extend_greedy(policy: Policy, problems: Sequence[Problem], owners: Sequence[int],
                  steps: Sequence[list[str]], k: int) -> tuple[list[list[str]], list[bool]]:
    """Lookahead (search-and-learn; Snell et al., arXiv 2408.03314): each prefix extended by up to k greedy (T=0) steps. Returns the
    extended step lists (the caller commits only its own steps) and whether each solution ended."""
    out = [list(s) for s in steps]
    ended = [False] * len(out)
    live = list(range(len(out)))
    for _ in range(k):
        if not live:
            break
        res = policy.expand([policy.prefix(problems[owners[j]].prompt, out[j]) for j in live],
                            [owners[j] for j in live], [0] * len(live), 1, greedy=True)
        nxt = []
        for j, row in zip(live, res):
            out[j] += row[0].steps
            ended[j] = row[0].ended
            if not row[0].ended:
                nxt.append(j)
        live = nxt
    return out, ended


def score_candidates(policy: Policy, rm, problems: Sequence[Problem], owners: Sequence[int],
                     cands: Sequence[Beam], how: str, lookahead: int) -> None:
    """Fill each candidate's step scores and ranking score (in place), with optional lookahead."""
    steps = [c.steps for c in cands]
    if lookahead:
        todo = [j for j, c in enumerate(cands) if not c.ended]
        ext, _ = extend_greedy(policy, problems, [owners[j] for j in todo], [steps[j] for j in todo], lookahead)
        steps = list(steps)
        for j, e in zip(todo, ext):
            steps[j] = e
    scored = score_prefixes(rm, [problems[o].prompt for o in owners], steps, how)
    for c, (sc, agg) in zip(cands, scored):
        c.step_scores, c.score = sc[:len(c.steps)], agg


def keep_top(cands: Sequence[Beam], k: int, dedup: bool) -> list[Beam]:
    """The k best candidates by score (ties keep generation order); optionally one per distinct text."""
    order = sorted(range(len(cands)), key=lambda j: -cands[j].score)
    kept, seen = [], set()
    for j in order:
        key = tuple(cands[j].steps)
        if dedup and key in seen:
            continue
        seen.add(key)
        kept.append(cands[j])
        if len(kept) == k:
            break
    return kept


@search_strategy("beam")
def beam(problems: Sequence[Problem], sampler, rm, params: SearchParams) -> SearchRun:
    meter, policy = start(sampler, rm, params, problems)
    how, N, M = aggregation_of(rm, params), params.n, params.beam_width
    survivors = max(1, N // M)
    active: list[list[Beam]] = [[Beam([], [], 0.0)] for _ in problems]
    done: list[list[Solution]] = [[] for _ in problems]
    for t in progress(range(params.max_steps), desc="beam (rounds)"):
        last = t == params.max_steps - 1
        todo = [(i, j, b) for i, bs in enumerate(active) if len(done[i]) < N for j, b in enumerate(bs)]
        if not todo:
            break
        outs = policy.expand([policy.prefix(problems[i].prompt, b.steps) for i, _, b in todo],
                             [i for i, _, _ in todo], [derive_seed(params.seed, problems[i].id, "beam", t, j)
                                                       for i, j, _ in todo],
                             N if t == 0 else M, whole=last)
        owners, cands = [], []
        for (i, _, b), row in zip(todo, outs):
            for o in row:
                owners.append(i)
                cands.append(Beam(b.steps + o.steps, [], 0.0, ended=o.ended or last))
        score_candidates(policy, rm, problems, owners, cands, how, params.lookahead)
        grouped: dict[int, list[Beam]] = {}
        for i, c in zip(owners, cands):
            if c.ended:
                done[i].append(make_solution(problems[i], c.steps, c.step_scores, how, policy.sep))
            else:
                grouped.setdefault(i, []).append(c)
        active = [keep_top(grouped.get(i, []), survivors, params.dedup) for i in range(len(problems))]
    pools = [done[i] or [make_solution(problems[i], b.steps, b.step_scores, how, policy.sep, finished=False)
                         for b in active[i]] for i in range(len(problems))]
    return finish("beam", params, problems, pools, policy, meter)
