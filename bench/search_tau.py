"""Choose early rejection's tau and MCTS's token budget on the gym `long_dev` split (never the reported
`long` split).

    .venv/bin/python bench/search_tau.py                # writes bench/results/search_tau_selection.json
    .venv/bin/python bench/search_tau.py --what mcts    # writes bench/results/search_mcts_selection.json

Rule, fixed before running: with the search settings of bench/search.py (N = 16, M = 4, 200 long_dev
problems, seed 0, the shipped PRM), among tau in {2, 3, 4} take the one with the largest FLOPs ratio
(full beam ÷ early rejection, prefix-cache accounting) whose accuracy is at most 1 point below full
beam's; 4 (the value fixed in advance) if none qualifies. bench/search.py then uses it.

MCTS rule, fixed before running: budgets {400, 1000, 2000} policy tokens per problem (seed 0): the
smallest budget at which MCTS's accuracy is at least 2 points above both plain greedy decoding and
greedy step-level search on the PRM at matched tokens; if none, the budget with the largest margin
over the better of the two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")

TAUS = (2, 3, 4)
BUDGETS = (400, 1000, 2000)
MCTS_SELECTION_NAME = "search_mcts_selection.json"
MCTS_RULE = ("smallest budget in {400, 1000, 2000} (long_dev, seed 0) with MCTS >= max(greedy decoding, greedy "
             "step search on the PRM at matched tokens) + 2 points; else the largest margin")
RULE = ("largest FLOPs ratio (beam / early rejection, N=16, M=4, long_dev, seed 0) with accuracy drop <= 1 point "
        "among tau in {2, 3, 4}; else 4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--taus", default=",".join(map(str, TAUS)), help="comma list; runs only these (points cached)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--what", choices=["tau", "mcts"], default="tau")
    ap.add_argument("--budgets", default=",".join(map(str, BUDGETS)), help="--what mcts: comma list")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from bench.search import BASE, TAU_SELECTION
    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler
    from prmkit.policy.sample import default_policy
    from prmkit.schema import atomic_write_text
    from prmkit.search import SearchParams
    from prmkit.search.run import make_reward_model
    from prmkit.search.sweep import sweep

    t0 = time.perf_counter()
    cache = ROOT / "bench" / "results" / "search_points" / f"gymprm-long_dev-p{args.problems}-v2"
    cache.mkdir(parents=True, exist_ok=True)
    problems = make_split("long_dev", args.problems)
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=256, device=args.device)
    rm = make_reward_model("", device=args.device)
    if args.what == "mcts":
        return select_mcts(args, problems, sampler, rm, cache, t0)
    taus = [int(t) for t in args.taus.split(",")]
    beam = sweep(problems, sampler, rm, ["beam"], [16], [0], SearchParams(tau=4, **BASE), cache=cache)[0]
    rows = {}
    for tau in taus:
        er = sweep(problems, sampler, rm, ["early_reject"], [16], [0], SearchParams(tau=tau, **BASE), cache=cache)[0]
        rows[tau] = {"flops_ratio": beam["flops_per_problem"] / er["flops_per_problem"],
                     "flops_with_prefill_ratio": beam["flops_with_prefill_per_problem"]
                     / er["flops_with_prefill_per_problem"],
                     "policy_tokens_ratio": beam["policy_tokens_per_problem"] / er["policy_tokens_per_problem"],
                     "accuracy": er["accuracy"], "accuracy_drop_points": 100 * (beam["accuracy"] - er["accuracy"])}
    if args.no_write:
        return
    ok = [t for t in rows if rows[t]["accuracy_drop_points"] <= 1.0 + 1e-9]
    chosen = max(ok, key=lambda t: rows[t]["flops_ratio"]) if ok else 4
    out = {"chosen_tau": chosen, "rule": RULE, "split": "long_dev", "problems": args.problems, "seed": 0, "n": 16,
           "beam_accuracy": beam["accuracy"], "by_tau": rows, "device": args.device,
           "wall_s": round(time.perf_counter() - t0, 1)}
    atomic_write_text(TAU_SELECTION, json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


def select_mcts(args, problems, sampler, rm, cache, t0) -> None:
    from types import SimpleNamespace

    from bench.search import BASE, TAU_SELECTION, mcts_vs_greedy
    from prmkit.schema import atomic_write_text
    from prmkit.search import SearchParams

    rows = {}
    for b in [int(x) for x in args.budgets.split(",")]:
        r = mcts_vs_greedy(problems, sampler, rm, SearchParams(tau=4, **BASE),
                           SimpleNamespace(mcts_budget=b, mcts_seeds="0"), cache)
        best_baseline = max(r["greedy_decoding_accuracy"], r["greedy_accuracy_same_budget"])
        rows[b] = {"mcts": r["mcts_accuracy"], "greedy_same_budget": r["greedy_accuracy_same_budget"],
                   "greedy_decoding": r["greedy_decoding_accuracy"], "margin_points": 100 * (r["mcts_accuracy"]
                                                                                          - best_baseline),
                   "mcts_tokens": r["mcts_policy_tokens_per_problem"]}
    if args.no_write:
        return
    ok = [b for b in sorted(rows) if rows[b]["margin_points"] >= 2.0 - 1e-9]
    chosen = ok[0] if ok else max(rows, key=lambda b: rows[b]["margin_points"])
    out = {"chosen_budget": chosen, "rule": MCTS_RULE, "split": "long_dev", "problems": args.problems, "seed": 0,
           "by_budget": rows, "device": args.device, "wall_s": round(time.perf_counter() - t0, 1)}
    atomic_write_text(TAU_SELECTION.with_name(MCTS_SELECTION_NAME), json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
