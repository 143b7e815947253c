"""Early rejection with partial reward modeling: beam search whose candidate steps are scored after
their first tau tokens, and only the kept fraction is generated to the end of the step
(Cheshmi, Khan et al. 2025, arXiv 2508.01969).

Per round: every survivor spawns M candidates, each generating at most `tau` tokens of its next
step (phase 1); the PRM scores each prefix with its partial last step, aggregated by the search's
rule (with `last` this is the paper's score of the partial step; phase 2); candidates whose
solution already ended go to the finished pool, and the top `keep_fraction` x N of the rest (1/M
by default, as beam search keeps) are kept (phase 3) and finished to the end of their step
(phase 4). Every generated token — rejected partial steps included — is counted. Expansions are
seeded as beam search's, so with tau >= the longest step early rejection *is* beam search.
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
    score_prefixes,
    start,
)
from prmkit.search.beam import Beam, keep_top, score_candidates
from prmkit.search.registry import search_strategy


def _finish_steps(policy, problems, params, t, kept: list[tuple[int, Beam, bool]]) -> None:
    """Phase 4: continue each kept partial step to its end (in place)."""
    todo = [(i, b) for i, b, partial in kept if partial]
    if not todo:
        return
    p = params
    prompts = [policy.prefix(problems[i].prompt, b.steps[:-1]) + b.steps[-1] for i, b in todo]
    seeds, seen = [], {}
    for i, _ in todo:  # k: the beam's place among its own problem's kept beams, so no other problem moves it
        seen[i] = seen.get(i, -1) + 1
        seeds.append(derive_seed(p.seed, problems[i].id, "er-finish", t, seen[i]))
    rest = max(1, p.max_step_tokens - p.tau)
    outs = policy.expand(prompts, [i for i, _ in todo], seeds, 1, max_tokens=rest)
    for (i, b), row in zip(todo, outs):
        o = row[0]
        tail = o.steps[0] if o.steps else ""
        b.steps[-1] = b.steps[-1] + tail
        b.ended = not o.sep_hit  # EOS or the step ran past max_step_tokens: the solution ends here


@search_strategy("early_reject")
def early_reject(problems: Sequence[Problem], sampler, rm, params: SearchParams) -> SearchRun:
    meter, policy = start(sampler, rm, params, problems)
    how, N, M = aggregation_of(rm, params), params.n, params.beam_width
    keep_n = max(1, round(N * (params.keep_fraction or 1.0 / M)))
    tau = params.tau if params.tau < params.max_step_tokens else None  # None: whole steps (= beam search)
    active: list[list[Beam]] = [[Beam([], [], 0.0)] for _ in problems]
    done: list[list[Solution]] = [[] for _ in problems]
    for t in progress(range(params.max_steps), desc="early_reject (rounds)"):
        last = t == params.max_steps - 1
        todo = [(i, j, b) for i, bs in enumerate(active) if len(done[i]) < N for j, b in enumerate(bs)]
        if not todo:
            break
        outs = policy.expand([policy.prefix(problems[i].prompt, b.steps) for i, _, b in todo],
                             [i for i, _, _ in todo],
                             [derive_seed(params.seed, problems[i].id, "beam", t, j) for i, j, _ in todo],
                             N if t == 0 else M, whole=last, max_tokens=None if last else tau)
        owners, cands, partial = [], [], []
        for (i, _, b), row in zip(todo, outs):
            for o in row:
                owners.append(i)
                cands.append(Beam(b.steps + (o.steps or ([""] if o.partial else [])), [], 0.0,
                                  ended=o.ended or last))
                partial.append(o.partial)
        score_candidates(policy, rm, problems, owners, cands, how, 0)           # phase 2
        grouped: dict[int, list[int]] = {}
        for k, (i, c) in enumerate(zip(owners, cands)):
            if c.ended:
                done[i].append(make_solution(problems[i], c.steps, c.step_scores, how, policy.sep))
            else:
                grouped.setdefault(i, []).append(k)
        is_partial = {id(c): p for c, p in zip(cands, partial)}
        kept = []                                                               # phase 3
        for i, ks in grouped.items():
            for c in keep_top([cands[k] for k in ks], keep_n, params.dedup):
                kept.append((i, c, is_partial[id(c)]))
        _finish_steps(policy, problems, params, t, kept)                        # phase 4
        _close_ended(rm, problems, kept, done, how, policy.sep)
        active = [[] for _ in problems]
        for i, c, _ in kept:
            if not c.ended:
                active[i].append(c)
    pools = [done[i] or _rescored(rm, problems[i], active[i], how, policy.sep) for i in range(len(problems))]
    return finish("early_reject", params, problems, pools, policy, meter)


def _close_ended(rm, problems, kept, done, how, sep) -> None:
    """Kept candidates whose solution ended in phase 4 are scored whole and join the finished pool."""
    ended = [(i, c) for i, c, _ in kept if c.ended]
    scored = score_prefixes(rm, [problems[i].prompt for i, _ in ended], [c.steps for _, c in ended], how)
    for (i, c), (sc, _) in zip(ended, scored):
        done[i].append(make_solution(problems[i], c.steps, sc, how, sep))


def _rescored(rm, problem, beams: list[Beam], how, sep) -> list[Solution]:
    scored = score_prefixes(rm, [problem.prompt] * len(beams), [b.steps for b in beams], how)
    return [make_solution(problem, b.steps, sc, how, sep, finished=False) for b, (sc, _) in zip(beams, scored)]
