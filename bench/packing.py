"""Packed vs padded PRM scoring (`--pack-tokens`) on real solution lengths: the vendored GSM8K test split.

    .venv/bin/python bench/packing.py            # writes bench/results/packing.json (CPU, one thread)
    python bench/packing.py --device cuda --dtype bfloat16 [--attn flash_attention_2] --hidden 896 --layers 24
                                                 # on a GPU: writes bench/results/packing_cuda.json

The reward model is a random-init Qwen2ForTokenClassification (weights do not change speed) over a
byte-level BPE tokenizer trained here on the split's text; each trace is a GSM8K question with its
reference solution split into lines (the `<<...>>` calculator annotations kept). Every arm scores the
same traces through `DiscriminativePRM.score`: padded length-sorted batches of `--batch-size` traces,
and packed rows of each `--pack-tokens` size. Throughput = real (unpadded) tokens per second, median of
`--repeats` interleaved rounds; the packed scores' largest gap to the padded ones is recorded too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "packing.json"


def gsm8k_traces(n: int) -> tuple[list[str], list[list[str]]]:
    from prmkit.data import gsm8k_test_path

    prompts, steps = [], []
    for line in gsm8k_test_path().read_text().splitlines()[:n]:
        row = json.loads(line)
        prompts.append(row["question"])
        steps.append([s for s in row["answer"].split("\n") if s.strip()])
    return prompts, steps


def tokenizer_for(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traces", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--pack-tokens", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa, eager, flash_attention_2)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    out = args.out or str(RESULTS if args.device == "cpu" else RESULTS.with_name("packing_cuda.json"))
    os.environ.setdefault("PRMKIT_QUIET", "1")
    import torch
    from transformers import Qwen2Config, Qwen2ForTokenClassification

    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.schema import atomic_write_text

    torch.set_num_threads(args.threads)
    prompts, steps = gsm8k_traces(args.traces)
    tok = tokenizer_for(prompts + [s for ss in steps for s in ss])
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                      num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=4096, num_labels=2, pad_token_id=tok.pad_token_id,
                      attn_implementation=args.attn)
    model = Qwen2ForTokenClassification(cfg).to(device=args.device, dtype=getattr(torch, args.dtype)).eval()
    rm = DiscriminativePRM(model, tok, batch_size=args.batch_size)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    lengths = [len(e.input_ids) for e in rm.encode_many(prompts, steps)]
    arms = {"padded": 0, **{f"packed_{n}": n for n in args.pack_tokens}}
    scores, times = {}, {name: [] for name in arms}
    for r in range(args.repeats + 1):                      # round 0 warms up (allocations) and is not kept
        for name, n in arms.items():
            rm.set_packing(n)
            sync()
            t = time.perf_counter()
            scores[name] = rm.score(prompts, steps)
            sync()
            if r:
                times[name].append(time.perf_counter() - t)
    tokens = sum(lengths)
    gap = {name: max(abs(a - b) for x, y in zip(scores[name], scores["padded"]) for a, b in zip(x, y))
           for name in arms if name != "padded"}
    med = {name: statistics.median(ts) for name, ts in times.items()}
    res = {"packed_vs_padded_throughput": {name: med["padded"] / med[name] for name in arms if name != "padded"},
           "tokens_per_s": {name: tokens / m for name, m in med.items()},
           "max_score_gap_to_padded": gap, "timings_s": times,
           "setup": {"traces": len(prompts), "trace_tokens": tokens, "length_min": min(lengths),
                     "length_median": statistics.median(lengths), "length_max": max(lengths),
                     "batch_size": args.batch_size, "pack_tokens": args.pack_tokens, "hidden": args.hidden,
                     "layers": args.layers, "parameters": rm.num_parameters, "threads": args.threads,
                     "repeats": args.repeats, "torch": torch.__version__, "device": args.device,
                     "dtype": args.dtype, "attn_implementation": args.attn,
                     "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
                     "machine": platform.processor() or platform.machine(), "load_avg": os.getloadavg()}}
    atomic_write_text(out, json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "timings_s"}, indent=2))


if __name__ == "__main__":
    main()
