"""Comparisons between search strategies at matched compute, on cached points (`sweep.cached_points`).

    res = mcts_vs_greedy(problems, sampler, rm, base, budget=2000, seeds=[0, 1, 2], config=mcts_config(BEST_FIRST),
                         cache=Path("points"))
    tokens = tokens_to_reach(curve["beam"], target=0.5)

`mcts_vs_greedy` runs MCTS at a per-problem token budget against greedy step-level search on the same reward
model (one chain, M candidates per step, M chosen per seed to match MCTS's policy tokens) and plain greedy
decoding; `tokens_to_reach` reads an accuracy-vs-tokens curve.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from statistics import fmean
from typing import Sequence

from prmkit.search.presets import MCTS_MORE, mcts_config, mcts_tag
from prmkit.search.sweep import cached_points, point_of

GREEDY_BASELINE = ("greedy step-level search on the PRM: one chain, M sampled candidates per step, the PRM's best "
                   "committed (DVTS with one subtree), M chosen per seed to match MCTS's mean policy tokens")


def tokens_to_reach(rows: list[dict], target: float) -> float | None:
    """Policy tokens at which a curve first reaches `target` accuracy (linear in log tokens between
    measured points); None if no point reaches it."""
    rows = sorted(rows, key=lambda r: r["policy_tokens_per_problem"])
    prev = None
    for r in rows:
        if r["accuracy"] >= target:
            if prev is None:
                return r["policy_tokens_per_problem"]
            a0, a1 = prev["accuracy"], r["accuracy"]
            l0, l1 = math.log(prev["policy_tokens_per_problem"]), math.log(r["policy_tokens_per_problem"])
            return math.exp(l0 + (target - a0) / (a1 - a0) * (l1 - l0))
        prev = r
    return None


def matched_candidates(mcts_tokens: float, greedy_tokens: float) -> int:
    """M of the greedy step search whose policy tokens match MCTS's: MCTS's tokens over greedy decoding's."""
    return max(1, round(mcts_tokens / greedy_tokens))


def mcts_vs_greedy(problems, sampler, rm, base, budget: int, seeds: Sequence[int], config: dict | None,
                   cache: Path | None, only_cached: bool = False) -> dict:
    """MCTS at `budget` policy tokens per problem (settings `base` with MCTS_MORE and `config` on top;
    `config` None = MCTS_DEFAULT) vs greedy step-level search on `rm` at matched tokens and the same sampling
    temperature (per seed), and plain greedy decoding; accuracies are means over the seeds. Points are
    cached in `cache` (`only_cached`: compute none; {} when nothing is on file)."""
    from prmkit.search import SEARCHES

    cfg = mcts_config(config)
    tag = mcts_tag(cfg)
    g0 = cached_points(cache, "greedy-t0", lambda: [point_of(SEARCHES["best_of_n"](
        problems, sampler, rm, replace(base, n=1, temperature=0.0, seed=0)), "greedy", 1, 0)], only_cached)
    rows = []
    for s in seeds:
        mp = replace(base, token_budget=budget, seed=s, **{**MCTS_MORE, **cfg})
        m = cached_points(cache, f"mcts-b{budget}-s{s}{tag}",
                          lambda: [point_of(SEARCHES["mcts"](problems, sampler, rm, mp), "mcts", 0, s)], only_cached)
        if not m or not g0:
            continue
        M = matched_candidates(m[0]["policy_tokens_per_problem"], g0[0]["policy_tokens_per_problem"])
        t = cfg["temperature"]
        gp = replace(base, n=M, beam_width=M, seed=s, temperature=t)
        g = cached_points(cache, f"prm-greedy-m{M}-s{s}" + ("" if t == base.temperature else f"-t{t:g}"),
                          lambda: [point_of(SEARCHES["dvts"](problems, sampler, rm, gp), "prm_greedy", M, s)],
                          only_cached)
        if g:
            rows.append((s, m[0], g[0], M))
    return summarize(rows, g0[0], cfg) if rows else {}


def summarize(rows: list[tuple[int, dict, dict, int]], g0: dict, cfg: dict) -> dict:
    """The keys of `mcts_vs_greedy` from its rows (seed, MCTS point, matched greedy point, M) and the greedy
    decoding point `g0`."""
    ms, gs = [m for _, m, _, _ in rows], [g for _, _, g, _ in rows]

    def mean_of(key: str, points: list[dict]) -> float | None:
        return fmean(p[key] for p in points) if all(p.get(key) is not None for p in points) else None

    def solved(point: dict) -> int:
        return round(point["accuracy"] * point["problems"])

    return {"mcts_accuracy": fmean(m["accuracy"] for m in ms),
            "mcts_policy_tokens_per_problem": fmean(m["policy_tokens_per_problem"] for m in ms),
            "greedy_accuracy_same_budget": fmean(g["accuracy"] for g in gs),
            "greedy_same_budget_policy_tokens_per_problem": fmean(g["policy_tokens_per_problem"] for g in gs),
            "greedy_same_budget_candidates_per_step": [M for *_, M in rows],
            # prefix-cached FLOPs of both models (search.budget) and right answers with no gold step error, where
            # the cached points carry them (points computed before error_free_accuracy existed do not)
            "mcts_flops_per_problem": fmean(m["flops_per_problem"] for m in ms),
            "greedy_same_budget_flops_per_problem": fmean(g["flops_per_problem"] for g in gs),
            "mcts_error_free_accuracy": mean_of("error_free_accuracy", ms),
            "greedy_same_budget_error_free_accuracy": mean_of("error_free_accuracy", gs),
            "mcts_vs_greedy_per_seed": [{"seed": s, "mcts": m["accuracy"], "greedy_same_budget": g["accuracy"],
                                         "mcts_tokens": m["policy_tokens_per_problem"],
                                         "greedy_tokens": g["policy_tokens_per_problem"]} for s, m, g, _ in rows],
            "greedy_baseline": GREEDY_BASELINE,
            "greedy_decoding_accuracy": g0["accuracy"],
            "greedy_decoding_policy_tokens_per_problem": g0["policy_tokens_per_problem"],
            # compared in problems solved (integers summed over seeds), so float rounding cannot break a tie
            "mcts_solved_per_seed": [solved(m) for m in ms],
            "greedy_decoding_solved": solved(g0),
            "mcts_beats_greedy_same_budget": sum(map(solved, ms)) > sum(map(solved, gs)),
            "mcts_beats_greedy_decoding": sum(map(solved, ms)) > solved(g0) * len(rows),
            "mcts_problems": ms[0]["problems"], "mcts_seeds": [s for s, *_ in rows], "mcts_config": cfg}
