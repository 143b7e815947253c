"""Benchmark: the PRM's key/value prefix cache in search (rewards.kv_prefix) — what the PRM runs, and wall time.

    .venv/bin/python bench/prm_kv_cache.py          # writes bench/results/prm_kv_cache.json
    .venv/bin/python bench/prm_kv_cache.py --methods beam --no-write & \
    .venv/bin/python bench/prm_kv_cache.py --methods early_reject --no-write; .venv/bin/python bench/prm_kv_cache.py

Beam search and early rejection (N = 16, M = 4, tau as chosen on long_dev, the settings of
bench/search.py) on the first --problems problems of the gym `long` split, seed 0, shipped PRM, each run
without and with the cache. Reported per method: PRM positions run (`prm_tokens`), what a prefix-caching
server would run (`prm_uncached_tokens`, the accounting of search.json), wall seconds, and whether the
selected answers are the same. Then beam's FLOPs ÷ early rejection's counting every position each model
ran (`flops_with_prefill`), without and with the cache: the cache turns the prefix-caching saving of
search.json into positions actually not run (the policy's prefix re-reads remain).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")

KV_TOKENS = 2_000_000   # positions kept (LRU); enough for one round of 16 beams x 100 problems and their parents


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--methods", default="beam,early_reject")
    ap.add_argument("--no-write", action="store_true", help="compute (and cache) points only")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "prm_kv_cache.json"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from bench.search import BASE, chosen_tau
    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler
    from prmkit.policy.sample import default_policy
    from prmkit.schema import atomic_write_text
    from prmkit.search import SEARCHES, SearchParams
    from prmkit.search.run import make_reward_model

    tau, _ = chosen_tau()
    points = ROOT / "bench" / "results" / "prm_kv_cache_points"
    points.mkdir(parents=True, exist_ok=True)
    problems = make_split("long", args.problems)
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=256, device="cpu")
    params = replace(SearchParams(tau=tau, **BASE), n=16, beam_width=4, seed=0)
    for method in args.methods.split(","):
        for kv in (0, KV_TOKENS):
            f = points / f"{method}-p{args.problems}-kv{kv}.json"
            if f.exists():
                continue
            rm = make_reward_model("", device="cpu", kv_cache=kv)
            t0 = time.perf_counter()
            run = SEARCHES[method](problems, sampler, rm, params)
            wall = time.perf_counter() - t0
            c = run.compute
            atomic_write_text(f, json.dumps({
                "method": method, "kv_cache_tokens": kv, "accuracy": run.accuracy,
                "answers": [r.answer for r in run.results], "prm_tokens": c.prm_tokens,
                "prm_uncached_tokens": c.prm_uncached_tokens, "policy_tokens": c.policy_tokens,
                "flops": c.flops, "flops_with_prefill": c.flops_with_prefill, "wall_s": round(wall, 1)}) + "\n")
            print(f.name, round(wall, 1), "s", flush=True)
    if args.no_write:
        return {}
    pts = {}
    for method in ("beam", "early_reject"):
        for kv in (0, KV_TOKENS):
            f = points / f"{method}-p{args.problems}-kv{kv}.json"
            if not f.exists():
                raise SystemExit(f"missing {f}: run with --methods {method} first")
            pts[(method, kv)] = json.loads(f.read_text())
    out = {"problems": args.problems, "split": "long", "seed": 0, "n": 16, "beam_width": 4, "tau": tau,
           "kv_cache_tokens": KV_TOKENS, "methods": {}}
    for method in ("beam", "early_reject"):
        off, on = pts[(method, 0)], pts[(method, KV_TOKENS)]
        out["methods"][method] = {
            "same_answers": off["answers"] == on["answers"], "accuracy": on["accuracy"],
            "prm_tokens_without_cache": off["prm_tokens"], "prm_tokens_with_cache": on["prm_tokens"],
            "prm_uncached_tokens": on["prm_uncached_tokens"],
            "prm_tokens_ratio": off["prm_tokens"] / max(1, on["prm_tokens"]),
            "wall_s_without_cache": off["wall_s"], "wall_s_with_cache": on["wall_s"],
            "wall_ratio": off["wall_s"] / max(1e-9, on["wall_s"])}
    b0, e0 = pts[("beam", 0)], pts[("early_reject", 0)]
    b1, e1 = pts[("beam", KV_TOKENS)], pts[("early_reject", KV_TOKENS)]
    out["beam_over_early_reject_flops_with_prefill_without_cache"] = b0["flops_with_prefill"] / e0["flops_with_prefill"]
    out["beam_over_early_reject_flops_with_prefill_with_cache"] = b1["flops_with_prefill"] / e1["flops_with_prefill"]
    out["beam_over_early_reject_flops_prefix_caching"] = b1["flops"] / e1["flops"]
    out["machine"] = {"cpu_threads": 1, "torch": torch.__version__, "platform": platform.machine()}
    atomic_write_text(Path(args.out), json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
