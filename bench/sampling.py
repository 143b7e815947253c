"""Sampler benchmark: our batched KV-cache sampler vs `model.generate`, and prefix reuse.

Writes bench/results/sampling.json:
  sampler_vs_generate_tokens_per_s   our tokens/s ÷ generate's, same model, batch and length: the median
                                     over interleaved pairs of runs (wall clock); `timing` has the spread
  sampler_vs_generate_cpu_time       the same ratio in this process's CPU time (steadier on a shared machine)
  prefix_reuse_forward_token_ratio   forward tokens with prefix reuse ÷ without (K=8 continuations)

    python bench/sampling.py [--model DIR] [--device cuda] [--batch 64] [--new-tokens 64] [--repeats 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
from pathlib import Path

import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.policy.base import SamplingParams
from prmkit.policy.hf import HFSampler
from prmkit.policy.throughput import interleaved
from prmkit.resolve import default_policy
from prmkit.schema import atomic_write_text


def prefix_reuse(sampler: HFSampler, num_prefixes: int, k: int) -> dict:
    """K continuations of each step prefix of long-split problems, with and without reuse."""
    prefixes = []
    for p in make_split("long", num_prefixes):
        steps = parse_prompt(p.prompt).solution_steps()
        prefixes.append(p.prompt + "\n".join(steps[: len(steps) // 2]) + "\n")
    params = SamplingParams(n=k, max_new_tokens=96, seed=0)
    counts = {}
    for share in (True, False):
        before = sampler.stats.forward_tokens
        sampler.sample(prefixes, params, share_prefix=share)
        counts[share] = sampler.stats.forward_tokens - before
    return {"with_reuse": counts[True], "without_reuse": counts[False], "ratio": counts[True] / counts[False]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=default_policy())
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=15, help="interleaved pairs (ours, generate)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--note", default="", help="free text recorded with the result (e.g. the machine's load)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sampling.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    sampler = HFSampler.from_pretrained(args.model, device=args.device, batch_size=args.batch)
    prompts = [p.prompt for p in make_split("test", args.batch)]
    load0 = os.getloadavg()
    timing = interleaved(sampler, prompts, args.new_tokens, args.repeats)
    load1 = os.getloadavg()
    reuse = prefix_reuse(sampler, num_prefixes=16, k=8)
    result = {
        "sampler_vs_generate_tokens_per_s": timing["wall"]["ratio"]["median"],
        "sampler_vs_generate_cpu_time": timing["cpu"]["ratio"]["median"],
        "prefix_reuse_forward_token_ratio": reuse["ratio"],
        "ours_tokens_per_s": timing["wall"]["ours_tokens_per_s"]["median"],
        "generate_tokens_per_s": timing["wall"]["generate_tokens_per_s"]["median"],
        "timing": timing,
        "prefix_reuse": reuse,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "setup": {"model": Path(args.model).name, "parameters": sampler.num_parameters, "device": args.device,
                  "batch": args.batch, "new_tokens": args.new_tokens, "repeats": args.repeats, "k": 8,
                  "decode_options": dataclasses.asdict(sampler.decode_options),
                  "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
                  "cpus": os.cpu_count(), "load_average_1m": [load0[0], load1[0]]},
        "notes": ("ratios are per interleaved pair (generate's time / ours, ABBA order), median with min/max/"
                  "quartiles; 'cpu' uses this process's CPU time, which other processes on the machine "
                  "disturb less than wall time. " + args.note).strip(),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
