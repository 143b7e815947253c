"""Throughput of the HF sampler against `model.generate` on the same model, prompts and length (what
bench/sampling.py and bench/gpu.py report): new tokens/s of each, and ratios over interleaved pairs of
runs so that drift in a shared machine's load hits both."""

from __future__ import annotations

import statistics
import time

from prmkit.policy.base import SamplingParams
from prmkit.policy.hf import HFSampler


def run_ours(sampler: HFSampler, prompts: list[str], new_tokens: int, seed: int) -> None:
    """Sample exactly `new_tokens` tokens (T=1, EOS ignored) for each prompt with the sampler."""
    params = SamplingParams(n=1, max_new_tokens=new_tokens, temperature=1.0, ignore_eos=True, seed=seed)
    out = sampler.sample(prompts, params)
    if not all(len(c.token_ids) == new_tokens for g in out for c in g):
        raise RuntimeError(f"the sampler stopped before {new_tokens} tokens with ignore_eos")


def generate_inputs(sampler: HFSampler, prompts: list[str]) -> dict:
    """The prompts as `model.generate` takes them: left padding (the tokenizer's side), on the model's device."""
    enc = sampler.tokenizer(prompts, return_tensors="pt", padding=True)
    return {k: v.to(sampler.device) for k, v in enc.items()}


def run_generate(sampler: HFSampler, enc: dict, new_tokens: int, seed: int) -> None:
    """Sample exactly `new_tokens` tokens for each prompt with `model.generate` (T=1, no top-p/top-k)."""
    import torch

    tok = sampler.tokenizer
    torch.manual_seed(seed)
    with torch.no_grad():
        out = sampler.model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                     max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                     pad_token_id=tok.pad_token_id)
    if out.shape[1] - enc["input_ids"].shape[1] != new_tokens:
        raise RuntimeError(f"generate did not make {new_tokens} new tokens")


def timed(fn) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one call (the GPU's queue drained before and after)."""
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    w, c = time.perf_counter(), time.process_time()
    fn()
    sync()
    return time.perf_counter() - w, time.process_time() - c


def time_ours(sampler: HFSampler, prompts: list[str], new_tokens: int, repeats: int) -> float:
    """Best-of-`repeats` new tokens/s of the sampler."""
    best = min(timed(lambda: run_ours(sampler, prompts, new_tokens, r))[0] for r in range(repeats))
    return len(prompts) * new_tokens / best


def time_generate(sampler: HFSampler, prompts: list[str], new_tokens: int, repeats: int) -> float:
    """Best-of-`repeats` new tokens/s of `model.generate` on the same prompts."""
    enc = generate_inputs(sampler, prompts)
    best = min(timed(lambda: run_generate(sampler, enc, new_tokens, r))[0] for r in range(repeats))
    return len(prompts) * new_tokens / best


def spread(xs: list[float]) -> dict:
    """Median, extremes and quartiles of `xs`."""
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "q1": q[0], "q3": q[2]}


def interleaved(sampler: HFSampler, prompts: list[str], new_tokens: int, repeats: int) -> dict:
    """`repeats` pairs of runs, ours and generate back to back, the order alternating (ABBA) so drift in the
    machine's load hits both; per-pair ratios of generate's time to ours (= our tokens/s over generate's),
    in wall and in CPU time."""
    enc = generate_inputs(sampler, prompts)
    ours = lambda r: run_ours(sampler, prompts, new_tokens, r)          # noqa: E731
    gen = lambda r: run_generate(sampler, enc, new_tokens, r)           # noqa: E731
    ours(0), gen(0)                                                     # warm-up
    t = {"ours": [], "generate": []}
    for r in range(repeats):
        order = (("ours", ours), ("generate", gen)) if r % 2 == 0 else (("generate", gen), ("ours", ours))
        for name, fn in order:
            t[name].append(timed(lambda: fn(r + 1)))
    toks = len(prompts) * new_tokens
    res = {}
    for i, clock in enumerate(("wall", "cpu")):
        o, g = [x[i] for x in t["ours"]], [x[i] for x in t["generate"]]
        res[clock] = {"ratio": spread([b / a for a, b in zip(o, g)]),
                      "ours_tokens_per_s": spread([toks / a for a in o]),
                      "generate_tokens_per_s": spread([toks / b for b in g])}
    return res
