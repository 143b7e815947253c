"""Diagnose MCTS trees on the gym `long_dev` split: what the search finds and how the PRM ranks it.

    .venv/bin/python bench/mcts_diagnose.py            # writes bench/results/mcts_diagnostics.json

For each config (names from bench/search_tau.py's MCTS_CONFIGS) at one token budget, seed 0:
* accuracy of the selected answer (the search's own `select` rule);
* pool: finished solutions per problem; oracle: share of problems with at least one correct solution;
* duplicate_sibling_share: sampled sibling steps identical to another sibling (nodes kept in the tree;
  0 by construction when merge_siblings is on); distinct_root_children: distinct first steps per tree;
* within_problem_auc: over problems whose pool holds correct and wrong solutions, the probability that
  a correct solution outscores a wrong one of the same problem (ties count 1/2) — how well the PRM can
  pick inside a pool.
Only long_dev is used (the split on which search settings are chosen).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")


def within_problem_auc(pools) -> tuple[float | None, int]:
    """P(score of a correct solution > score of a wrong one of the same problem), ties 1/2; and how many
    problems had both. `pools`: per problem, a list of (score, correct)."""
    num = den = 0.0
    mixed = 0
    for pool in pools:
        pos = [s for s, c in pool if c]
        neg = [s for s, c in pool if not c]
        if pos and neg:
            mixed += 1
            for p in pos:
                for q in neg:
                    num += (p > q) + 0.5 * (p == q)
                    den += 1
    return (num / den if den else None), mixed


def tree_stats(tree_records) -> tuple[int, int, int]:
    """(sampled children, duplicates among siblings, distinct children of the root) of one exported tree."""
    by_parent = collections.defaultdict(list)
    for j, rec in enumerate(tree_records):
        if j and not rec["rollout"]:
            by_parent[rec["parent"]].append(rec["step"])
    total = sum(len(v) for v in by_parent.values())
    dup = sum(len(v) - len(set(v)) for v in by_parent.values())
    return total, dup, len(set(by_parent.get(0, [])))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="rest-mcts|widen+merge, rollout-to-end",
                    help="'|'-separated names from prmkit.search.presets.MCTS_CONFIGS")
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "mcts_diagnostics.json"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy
    from prmkit.schema import atomic_write_text
    from prmkit.search import SEARCHES, SearchParams
    from prmkit.search.presets import BASE, MCTS_CONFIGS, MCTS_MORE, mcts_config
    from prmkit.search.run import make_reward_model

    problems = make_split("long_dev", args.problems)
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=256, device=args.device)
    rm = make_reward_model("", device=args.device)
    out = {"split": "long_dev", "problems": args.problems, "budget": args.budget, "seed": 0, "configs": {}}
    for name in args.configs.split("|"):
        t0 = time.perf_counter()
        cfg = mcts_config(MCTS_CONFIGS[name])
        run = SEARCHES["mcts"](problems, sampler, rm, replace(SearchParams(**BASE), token_budget=args.budget,
                                                              seed=0, **{**MCTS_MORE, **cfg}))
        stats = [tree_stats(r.meta["tree"]) for r in run.results]
        auc, mixed = within_problem_auc([[(s.score, s.correct) for s in r.solutions] for r in run.results])
        n = len(run.results)
        out["configs"][name] = {
            "overrides": MCTS_CONFIGS[name], "accuracy": run.accuracy,
            "policy_tokens_per_problem": run.compute.policy_tokens / n,
            "pool_mean": sum(len(r.solutions) for r in run.results) / n,
            "oracle": sum(any(s.correct for s in r.solutions) for r in run.results) / n,
            "duplicate_sibling_share": sum(d for _, d, _ in stats) / max(1, sum(t for t, _, _ in stats)),
            "distinct_root_children": sum(k for *_, k in stats) / n,
            "within_problem_auc": auc, "problems_with_mixed_pool": mixed,
            "wall_s": round(time.perf_counter() - t0, 1)}
        print(name, json.dumps(out["configs"][name]), flush=True)
    atomic_write_text(Path(args.out), json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
