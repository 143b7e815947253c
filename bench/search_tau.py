"""Choose early rejection's tau on the gym `long_dev` split (never the reported `long` split).

    .venv/bin/python bench/search_tau.py        # writes bench/results/search_tau_selection.json

Rule, fixed before running: with the search settings of bench/search.py (N = 16, M = 4, 200 long_dev
problems, seed 0, the shipped PRM), among tau in {2, 3, 4} take the one with the largest FLOPs ratio
(full beam ÷ early rejection, prefix-cache accounting) whose accuracy is at most 1 point below full
beam's; 4 (the value fixed in advance) if none qualifies. bench/search.py then uses it.
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
RULE = ("largest FLOPs ratio (beam / early rejection, N=16, M=4, long_dev, seed 0) with accuracy drop <= 1 point "
        "among tau in {2, 3, 4}; else 4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--taus", default=",".join(map(str, TAUS)), help="comma list; runs only these (points cached)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--device", default="cpu")
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


if __name__ == "__main__":
    main()
