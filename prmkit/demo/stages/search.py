"""The search stage of `prmkit demo` on the gym `long` split: best-of-N, beam search and early
rejection with the shipped gym PRM, then best-first MCTS against greedy decoding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from prmkit.search.sweep import curves, plot_curves, sweep

STRONG_VERIFIER_DIR = Path(__file__).resolve().parents[3] / "bench" / "models" / "strong_verifier"
"""a gym PRM stronger than the policy (rebuilt by bench/strong_verifier.py): a data path in a source
checkout only, never imported; without it the demo skips its MCTS part"""


def demo_stage(out_dir: Path, seed: int, num_problems: int = 64, ns: Sequence[int] = (1, 4, 16),
               step_ns: Sequence[int] = (4, 8)) -> dict:
    """The README main job's search stage on the gym `long` split: best-of-N (weighted vote; N in `ns`,
    subsampled from one pool), beam search and early rejection (N in `step_ns`, M = 4), one seed,
    with the shipped gym PRM (the exact checker with 15% flipped verdicts when no PRM is shipped); then
    best-first MCTS guided by the stronger verifier against greedy decoding on the same problems.
    Writes accuracy_vs_compute.png and curves.json into `out_dir`; returns flat headline numbers."""
    import time

    import torch

    t0, c0 = time.perf_counter(), time.process_time()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny policy is overhead-bound: one thread is fastest on a shared machine
    try:
        return _demo(out_dir, seed, num_problems, ns, step_ns, t0, c0)
    finally:
        torch.set_num_threads(threads)


def _demo_mcts(problems, sampler, rm, base, seed) -> dict:
    """Best-first MCTS guided by the stronger verifier (when this checkout has it) against greedy decoding."""
    from dataclasses import replace

    from prmkit.search import SEARCHES
    from prmkit.search.presets import BEST_FIRST
    from prmkit.search.run import make_reward_model

    if not (STRONG_VERIFIER_DIR / "prmkit_rm.json").exists():
        return {}
    greedy = SEARCHES["best_of_n"](problems, sampler, rm, replace(base, n=1, temperature=0.0, seed=0))
    verifier = make_reward_model(str(STRONG_VERIFIER_DIR))
    mcts = SEARCHES["mcts"](problems, sampler, verifier,
                            replace(base, token_budget=2000, seed=seed, **BEST_FIRST))
    n = len(problems)
    return {"search_mcts_reward_model": "bench/models/strong_verifier (best-first MCTS, budget 2000)",
            "search_mcts_accuracy": round(mcts.accuracy, 4),
            "search_mcts_policy_tokens": round(mcts.compute.policy_tokens / n, 1),
            "search_greedy_decoding_accuracy": round(greedy.accuracy, 4),
            "search_greedy_decoding_policy_tokens": round(greedy.compute.policy_tokens / n, 1)}


def _demo(out_dir, seed, num_problems, ns, step_ns, t0, c0) -> dict:
    import time

    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy
    from prmkit.rewards import SHIPPED_PRM_DIR
    from prmkit.schema import atomic_write_text
    from prmkit.search.base import SearchParams
    from prmkit.search.run import make_reward_model

    out_dir = Path(out_dir)
    shipped = (SHIPPED_PRM_DIR / "prmkit_rm.json").exists()
    rm = make_reward_model("" if shipped else "checker", flip_rate=0.15)
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=256)
    problems = make_split("long", num_problems)
    base = SearchParams(beam_width=4, tau=4, temperature=0.8, select="weighted", max_step_tokens=16, max_steps=13,
                        max_new_tokens=160)
    points = sweep(problems, sampler, rm, ["best_of_n"], list(ns), [seed], base, progress_desc="search (bon)")
    points += sweep(problems, sampler, rm, ["beam", "early_reject"], list(step_ns), [seed], base,
                    progress_desc="search (beam, early_reject)")
    curve = curves(points)
    png = plot_curves(curve, out_dir / "accuracy_vs_compute.png", f"gym long, {num_problems} problems, seed {seed}")
    atomic_write_text(out_dir / "curves.json", json.dumps({"curves": curve, "points": points}, indent=2) + "\n")
    res: dict = {"search_reward_model": "gym PRM" if shipped else "GymCheckerRM(flip_rate=0.15)",
                 "search_problems": num_problems}
    for method, rows in curve.items():
        for r in rows:
            res[f"search_{method}_n{r['n']}_accuracy"] = round(r["accuracy"], 4)
            res[f"search_{method}_n{r['n']}_policy_tokens"] = round(r["policy_tokens_per_problem"], 1)
    res.update(_demo_mcts(problems, sampler, rm, base, seed))
    res["search_wall_s"] = round(time.perf_counter() - t0, 1)
    res["search_cpu_s"] = round(time.process_time() - c0, 1)
    res["plots"] = [str(png)]
    return res
