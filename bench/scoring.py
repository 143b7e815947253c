"""One-pass step scoring vs a raw forward pass and vs rescoring every prefix.

    .venv/bin/python bench/scoring.py            # writes bench/results/scoring.json

* one pass: `rm.score(prompts, steps)` — tokenization (cold cache), length-sorted batching, one
  forward per trace, the head read at every step end;
* raw forward: `model(input_ids, attention_mask)` on the very same padded batches, pre-tokenized
  (the ceiling: what the forward alone costs);
* per prefix: every prefix `steps[:k+1]` scored as its own sequence (what a PRM without one-pass
  readout costs).

Throughput = real (unpadded) tokens of the traces per second. Each measurement is repeated and the
median kept (the machine is shared). The model is the shipped gym PRM (its weights do not change
its speed); the traces are policy samples on the gym test split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "scoring.json"


def _load_rm(batch_size: int, device: str = "cpu"):
    from prmkit.rewards import SHIPPED_PRM_DIR, default_gym_prm

    if (SHIPPED_PRM_DIR / "prmkit_rm.json").exists():
        return default_gym_prm(batch_size=batch_size, device=device), "shipped gym PRM"
    import torch

    from prmkit.resolve import default_policy
    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.train.silence import quiet_transformers

    torch.manual_seed(0)
    with quiet_transformers():
        return (DiscriminativePRM.from_pretrained(default_policy(), batch_size=batch_size, device=device),
                "gym policy + new head")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=128)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu (the committed numbers) or cuda (bench/results/scoring_cuda.json)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    os.environ.setdefault("PRMKIT_QUIET", "1")
    import torch

    from prmkit.lm.batching import length_sorted_batches, pad_batch
    from prmkit.rewards.readout import CachedTokenizer
    from prmkit.gym.samples import gym_traces

    torch.set_num_threads(args.threads)
    rm, model_name = _load_rm(args.batch_size, args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    traces = gym_traces("test", args.problems, args.samples, args.seed, desc="sample test")
    prompts, steps = [t.prompt for t in traces], [t.steps for t in traces]
    encs = rm.encode_many(prompts, steps)
    n_tokens = sum(len(e.input_ids) for e in encs)
    batches = [tuple(x.to(args.device) for x in pad_batch([encs[i] for i in b], rm.pad_id)[:2])
               for b in length_sorted_batches([len(e.input_ids) for e in encs], args.batch_size)]
    pre_prompts = [p for p, ss in zip(prompts, steps) for _ in ss]
    pre_steps = [ss[: k + 1] for ss in steps for k in range(len(ss))]

    def one_pass() -> None:
        rm._pieces = CachedTokenizer(rm.tokenizer)          # cold tokenizer cache every time
        rm.score(prompts, steps)

    def raw_forward() -> None:
        with torch.inference_mode():
            for ids, attn in batches:
                rm.model(input_ids=ids, attention_mask=attn).logits
                if getattr(rm, "loglik_lm", None) is not None:   # the likelihood feature's LM runs too
                    rm.loglik_lm(input_ids=ids, attention_mask=attn).logits
        sync()

    def per_prefix() -> None:
        rm._pieces = CachedTokenizer(rm.tokenizer)
        rm.score(pre_prompts, pre_steps)

    timings: dict[str, list[float]] = {"one_pass": [], "raw_forward": [], "per_prefix": []}
    fns = {"one_pass": one_pass, "raw_forward": raw_forward, "per_prefix": per_prefix}
    one_pass()                                                # warm-up (allocations, kernels)
    raw_forward()
    for _ in range(args.repeats):                             # interleaved, so load changes hit all three
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in timings.items()}
    res = {
        "one_pass_vs_forward_throughput": med["raw_forward"] / med["one_pass"],
        "one_pass_vs_per_prefix_speedup": med["per_prefix"] / med["one_pass"],
        "mean_steps": sum(map(len, steps)) / len(steps),
        "one_pass_tokens_per_s": n_tokens / med["one_pass"],
        "raw_forward_tokens_per_s": n_tokens / med["raw_forward"],
        "per_prefix_trace_tokens_per_s": n_tokens / med["per_prefix"],
        "per_prefix_forward_tokens": sum(len(e.input_ids) for e in rm.encode_many(pre_prompts, pre_steps)),
        "trace_tokens": n_tokens,
        "timings_s": timings,
        "setup": {"model": model_name, "parameters": rm.num_parameters, "readout": rm.readout.name,
                  "traces": len(traces), "problems": args.problems, "samples": args.samples, "split": "test",
                  "seed": args.seed, "batch_size": args.batch_size, "repeats": args.repeats,
                  "threads": args.threads, "device": args.device, "torch": torch.__version__,
                  "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
                  "machine": platform.processor() or platform.machine(), "load_avg": os.getloadavg()},
    }
    from prmkit.schema import atomic_write_text

    atomic_write_text(args.out, json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if not isinstance(v, dict)}, indent=2))


if __name__ == "__main__":
    main()
