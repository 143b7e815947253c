"""Sampler benchmark: our batched KV-cache sampler vs `model.generate`, and prefix reuse.

Writes bench/results/sampling.json:
  sampler_vs_generate_tokens_per_s   our tokens/s ÷ generate's, same model, batch and length
  prefix_reuse_forward_token_ratio   forward tokens with prefix reuse ÷ without (K=8 continuations)

    python bench/sampling.py [--model DIR] [--device cuda] [--batch 64] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.policy.base import SamplingParams
from prmkit.policy.hf import HFSampler
from prmkit.policy.sample import default_policy
from prmkit.schema import atomic_write_text


def time_ours(sampler: HFSampler, prompts: list[str], new_tokens: int, repeats: int) -> float:
    params = SamplingParams(n=1, max_new_tokens=new_tokens, temperature=1.0, ignore_eos=True)
    best = float("inf")
    for r in range(repeats):
        t = time.perf_counter()
        out = sampler.sample(prompts, SamplingParams(**{**params.__dict__, "seed": r}))
        best = min(best, time.perf_counter() - t)
        assert all(len(c.token_ids) == new_tokens for g in out for c in g)
    return len(prompts) * new_tokens / best


def time_generate(sampler: HFSampler, prompts: list[str], new_tokens: int, repeats: int) -> float:
    tok, model = sampler.tokenizer, sampler.model
    enc = tok(prompts, return_tensors="pt", padding=True)  # left padding (the tokenizer's side)
    enc = {k: v.to(sampler.device) for k, v in enc.items()}
    best = float("inf")
    for r in range(repeats):
        torch.manual_seed(r)
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id)
        best = min(best, time.perf_counter() - t)
        assert out.shape[1] - enc["input_ids"].shape[1] == new_tokens
    return len(prompts) * new_tokens / best


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
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sampling.json"))
    args = ap.parse_args()

    sampler = HFSampler.from_pretrained(args.model, device=args.device, batch_size=args.batch)
    prompts = [p.prompt for p in make_split("test", args.batch)]
    time_ours(sampler, prompts[:4], 8, 1)  # warm-up
    ours = time_ours(sampler, prompts, args.new_tokens, args.repeats)
    gen = time_generate(sampler, prompts, args.new_tokens, args.repeats)
    reuse = prefix_reuse(sampler, num_prefixes=16, k=8)
    result = {
        "sampler_vs_generate_tokens_per_s": ours / gen,
        "prefix_reuse_forward_token_ratio": reuse["ratio"],
        "ours_tokens_per_s": ours,
        "generate_tokens_per_s": gen,
        "prefix_reuse": reuse,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "setup": {"model": Path(args.model).name, "parameters": sampler.num_parameters, "device": args.device,
                  "batch": args.batch, "new_tokens": args.new_tokens, "repeats": args.repeats, "k": 8,
                  "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine()},
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
