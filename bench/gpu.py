"""GPU benchmark (issue 17): our sampler vs `model.generate`, and PRM scoring MFU, for a random-init
model of the Qwen2-0.5B shape in bf16, each measured alone on the GPU. Meant to finish in well under
10 minutes on one GPU.

Writes bench/results/gpu.json (only when run on CUDA at the full shape):
  sampler_vs_generate_b64    our new tokens/s ÷ generate's, batch 64
  sampler_vs_generate_b256   the same at batch 256
  scoring_mfu                model FLOPs/s of one-pass PRM scoring (Qwen2ForTokenClassification forward,
                             the classifier layout of prmkit's PRMs) ÷ the GPU's dense bf16 peak
  device, model_shape, dtype, and the raw figures under `details`

    python bench/gpu.py                      # on a GPU machine
    python bench/gpu.py --tiny --device cpu  # end-to-end check of the script on CPU (writes --out only)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from prmkit.policy.throughput import time_generate, time_ours  # the timing bench/sampling.py uses
from prmkit.schema import atomic_write_text

# Qwen2-0.5B's config.json (hidden 896, 24 layers, 14 heads, 2 KV heads, 151,936 tokens, tied embeddings)
QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6,
                 tie_word_embeddings=True, rms_norm_eps=1e-6)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=512, max_position_embeddings=2048, tie_word_embeddings=True)
# dense (no sparsity) bf16 tensor-core peak, FLOP/s, from the vendors' datasheets
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12, "L40S": 362e12,
             "L4": 121e12, "A10": 125e12, "RTX 4090": 165e12}


def peak_flops(name: str) -> float | None:
    hits = [v for k, v in PEAK_BF16.items() if k in name]
    return max(hits) if hits else None


def build(shape: dict, dtype: torch.dtype, device: str, head: bool):
    """Random-init Qwen2 of `shape`: a causal LM, or the token-classification PRM layout (head=True)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForTokenClassification

    torch.manual_seed(0)
    cfg = Qwen2Config(**shape, num_labels=2, attn_implementation="sdpa")
    model = (Qwen2ForTokenClassification if head else Qwen2ForCausalLM)(cfg)
    return model.to(device=device, dtype=dtype).eval()


def sampler_ratio(model, tok, batch: int, new_tokens: int, repeats: int) -> dict:
    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler

    sampler = HFSampler(model, tok, batch_size=batch)
    prompts = [p.prompt for p in make_split("test", batch)]
    time_ours(sampler, prompts[:4], 8, 1)  # warm-up (kernels, caches)
    ours = time_ours(sampler, prompts, new_tokens, repeats)
    time_generate(sampler, prompts[:4], 8, 1)
    gen = time_generate(sampler, prompts, new_tokens, repeats)
    return {"ours_new_tokens_per_s": ours, "generate_new_tokens_per_s": gen, "ratio": ours / gen}


def forward_flops(cfg, tokens: int, seq: int) -> float:
    """Model FLOPs of a forward pass: 2 * (non-embedding parameters) per token + causal attention
    (QK^T and AV: 2 * 2 * seq/2 * hidden per token and layer, halved for the causal mask)."""
    d, L, ff = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    kv = d * cfg.num_key_value_heads // cfg.num_attention_heads
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * ff  # q, o, k, v, gate/up/down
    dense = 2 * L * per_layer * tokens + 2 * d * 2 * tokens  # + the 2-class head
    attention = 2 * 2 * L * d * (seq / 2) * tokens
    return dense + attention


def scoring(model, batch: int, seq: int, repeats: int, device: str) -> dict:
    """One-pass scoring throughput: forward over batch x seq tokens, no padding (every row full)."""
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), device=device)
    att = torch.ones_like(ids)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=att)  # warm-up
        sync()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            model(input_ids=ids, attention_mask=att)
            sync()
            best = min(best, time.perf_counter() - t)
    flops = forward_flops(model.config, batch * seq, seq)
    return {"tokens_per_s": batch * seq / best, "flops_per_s": flops / best, "batch": batch, "seq": seq}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a tiny shape, to check the script end to end on CPU")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--score-batch", type=int, default=64)
    ap.add_argument("--score-seq", type=int, default=1024)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    on_gpu = args.device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --tiny --device cpu to check the script; "
                         "bench/results/gpu.json is written only from a GPU run")
    full = not args.tiny
    out = Path(args.out) if args.out else (Path(__file__).parent / "results" / "gpu.json" if on_gpu and full else None)
    if out is None:
        raise SystemExit("--out is required off the GPU or with --tiny (gpu.json holds GPU figures only)")
    if out.name == "gpu.json" and not (on_gpu and full):
        raise SystemExit("gpu.json holds full-shape GPU figures only; pass another --out")
    dtype = getattr(torch, args.dtype)
    shape = QWEN2_05B if full else TINY
    from transformers import AutoTokenizer

    from prmkit.resolve import default_policy

    tok = AutoTokenizer.from_pretrained(default_policy())  # the gym's char tokenizer: any ids fit the vocabulary
    t0 = time.perf_counter()
    lm = build(shape, dtype, args.device, head=False)
    samp = {b: sampler_ratio(lm, tok, b, args.new_tokens, args.repeats) for b in (64, 256)}
    params = sum(p.numel() for p in lm.parameters())
    del lm
    if on_gpu:
        torch.cuda.empty_cache()
    prm = build(shape, dtype, args.device, head=True)
    score = scoring(prm, args.score_batch if full else 4, args.score_seq if full else 64, args.repeats, args.device)
    name = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    peak = peak_flops(name) if on_gpu else None
    result = {
        "sampler_vs_generate_b64": samp[64]["ratio"],
        "sampler_vs_generate_b256": samp[256]["ratio"],
        "scoring_mfu": score["flops_per_s"] / peak if peak else None,
        "device": name,
        "model_shape": "qwen2-0.5b" if full else "tiny",
        "dtype": args.dtype,
        "details": {"sampler_b64": samp[64], "sampler_b256": samp[256], "scoring": score, "peak_bf16_flops": peak,
                    "parameters": params, "new_tokens": args.new_tokens, "repeats": args.repeats,
                    "wall_s": time.perf_counter() - t0, "torch": torch.__version__},
    }
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
