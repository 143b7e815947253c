"""CUDA path check for the sampler (run on a GPU machine; never part of the test suite).

Samples K=8 continuations of step prefixes on the device and compares the reported logprobs with
teacher-forced logprobs on the same device, and greedy decoding on the device with the CPU's.
Writes bench/results/cuda_check.json (or --out).
"""

from __future__ import annotations

import argparse
import json

import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.policy.base import SamplingParams
from prmkit.policy.hf import HFSampler
from prmkit.policy.sample import default_policy
from prmkit.schema import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/cuda_check.json")
    args = ap.parse_args()
    gpu = HFSampler.from_pretrained(default_policy(), device="cuda")
    cpu = HFSampler.from_pretrained(default_policy(), device="cpu")
    problems = make_split("long", 16)
    prefixes = [p.prompt + "\n".join(parse_prompt(p.prompt).solution_steps()[:2]) + "\n" for p in problems]
    groups = gpu.sample(prefixes, SamplingParams(n=8, max_new_tokens=96, seed=0))
    worst = 0.0
    for prefix, group in zip(prefixes, groups):
        ids = gpu.encode_prompt(prefix)
        for c in group:
            full = torch.tensor([ids + c.token_ids], device="cuda")
            with torch.no_grad():
                lp = torch.log_softmax(gpu.model(full).logits[0, :-1].float(), -1)
            tf = lp[torch.arange(full.size(1) - 1), full[0, 1:]][len(ids) - 1:].cpu()
            worst = max(worst, float((tf - torch.tensor(c.logprobs)).abs().max()))
    greedy = SamplingParams(n=1, max_new_tokens=120, temperature=0)
    prompts = [p.prompt for p in make_split("test", 64)]
    same = sum(a[0].token_ids == b[0].token_ids for a, b in zip(gpu.sample(prompts, greedy), cpu.sample(prompts, greedy)))
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "max_abs_logprob_diff_vs_teacher_forcing": worst, "greedy_same_as_cpu": f"{same}/{len(prompts)}"}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
