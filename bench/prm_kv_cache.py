"""Benchmark: key/value prefix caches in search (lm.kv_prefix) — what the models run, and wall time.

    .venv/bin/python bench/prm_kv_cache.py          # writes bench/results/prm_kv_cache.json
    .venv/bin/python bench/prm_kv_cache.py --methods beam --no-write & \
    .venv/bin/python bench/prm_kv_cache.py --methods early_reject --no-write; .venv/bin/python bench/prm_kv_cache.py

Beam search and early rejection (N = 16, M = 4, tau as chosen on long_dev, the settings of
bench/search.py) on the first --problems problems of the gym `long` split, seed 0, shipped PRM, each run
three ways: no cache (`off`), the PRM's cache (`prm`), the PRM's and the policy's prompt cache (`both`).
Reported per method and mode: positions each model ran, what a prefix-caching server would run for the
PRM (`prm_uncached_tokens`, the accounting of search.json), wall seconds, and whether the selected
answers equal the uncached run's. Then beam's FLOPs ÷ early rejection's counting every position each
model ran (`flops_with_prefill`) per mode, beside the prefix-caching accounting of search.json.
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

KV_TOKENS = 2_000_000   # positions kept (LRU); enough for one round of 16 beams x 200 problems and their parents
MODES = {"off": (0, 0), "prm": (KV_TOKENS, 0), "both": (KV_TOKENS, KV_TOKENS)}   # (PRM, policy) kept positions


def compute_points(methods, num_problems: int, problems, sampler, params, points: Path) -> None:
    """Run each method in each mode (MODES) not yet on file in `points`; one JSON per (method, mode)."""
    from prmkit.schema import atomic_write_text
    from prmkit.search import SEARCHES
    from prmkit.search.run import make_reward_model

    for method in methods:
        for mode, (kv, pkv) in MODES.items():
            f = points / f"{method}-p{num_problems}-{mode}.json"
            if f.exists():
                continue
            rm = make_reward_model("", device="cpu", kv_cache=kv)
            sampler.set_kv_cache(pkv)
            t0 = time.perf_counter()
            run = SEARCHES[method](problems, sampler, rm, params)
            wall = time.perf_counter() - t0
            c = run.compute
            atomic_write_text(f, json.dumps({
                "method": method, "mode": mode, "accuracy": run.accuracy,
                "answers": [r.answer for r in run.results], "prm_tokens": c.prm_tokens,
                "policy_forward_tokens": c.policy_forward_tokens,
                "prm_uncached_tokens": c.prm_uncached_tokens, "policy_tokens": c.policy_tokens,
                "flops": c.flops, "flops_with_prefill": c.flops_with_prefill, "wall_s": round(wall, 1)}) + "\n")
            print(f.name, round(wall, 1), "s", flush=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--methods", default="beam,early_reject")
    ap.add_argument("--no-write", action="store_true", help="compute (and cache) points only")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "prm_kv_cache.json"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy
    from prmkit.schema import atomic_write_text
    from prmkit.search import SearchParams
    from prmkit.search.presets import BASE, chosen_tau

    tau, _ = chosen_tau(ROOT / "bench" / "results")
    points = ROOT / "bench" / "results" / "prm_kv_cache_points"
    points.mkdir(parents=True, exist_ok=True)
    problems = make_split("long", args.problems)
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=256, device="cpu")
    params = replace(SearchParams(tau=tau, **BASE), n=16, beam_width=4, seed=0)
    compute_points(args.methods.split(","), args.problems, problems, sampler, params, points)
    if args.no_write:
        return {}
    pts = {}
    for method in ("beam", "early_reject"):
        for mode in MODES:
            f = points / f"{method}-p{args.problems}-{mode}.json"
            if not f.exists():
                raise SystemExit(f"missing {f}: run with --methods {method} first")
            pts[(method, mode)] = json.loads(f.read_text())
    out = {"problems": args.problems, "split": "long", "seed": 0, "n": 16, "beam_width": 4, "tau": tau,
           "kv_cache_tokens": KV_TOKENS, "methods": {}}
    for method in ("beam", "early_reject"):
        off = pts[(method, "off")]
        out["methods"][method] = {mode: {
            "same_answers_as_off": pts[(method, mode)]["answers"] == off["answers"],
            "accuracy": pts[(method, mode)]["accuracy"],
            "prm_tokens": pts[(method, mode)]["prm_tokens"],
            "prm_uncached_tokens": pts[(method, mode)]["prm_uncached_tokens"],
            "policy_forward_tokens": pts[(method, mode)]["policy_forward_tokens"],
            "policy_generated_tokens": pts[(method, mode)]["policy_tokens"],
            "wall_s": pts[(method, mode)]["wall_s"]} for mode in MODES}
    out["beam_over_early_reject_flops_with_prefill"] = {
        mode: pts[("beam", mode)]["flops_with_prefill"] / pts[("early_reject", mode)]["flops_with_prefill"]
        for mode in MODES}
    out["beam_over_early_reject_flops_prefix_caching"] = (pts[("beam", "off")]["flops"]
                                                          / pts[("early_reject", "off")]["flops"])
    out["wall_ratio_off_over_both"] = {m: pts[(m, "off")]["wall_s"] / pts[(m, "both")]["wall_s"]
                                       for m in ("beam", "early_reject")}
    out["machine"] = {"cpu_threads": 1, "torch": torch.__version__, "platform": platform.machine()}
    atomic_write_text(Path(args.out), json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
