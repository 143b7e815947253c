"""Rewrite the README's results table from bench/results/*.json (between the RESULTS markers)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- RESULTS:BEGIN (bench/update_readme.py) -->", "<!-- RESULTS:END -->"


def rows() -> list[tuple[str, str, str]]:
    res = ROOT / "bench" / "results"
    out = []
    if (res / "gym_stats.json").exists():
        g = json.loads((res / "gym_stats.json").read_text())
        for split, target in (("test", "30–80%"), ("long", "≥ 90% well-formed")):
            s = g[split]
            out.append((f"gym `{split}` sampled accuracy (T=1, {s['num_traces']} problems)",
                        f"{s['sampled_accuracy']:.3f}", target if split == "test" else "errs more than test"))
            out.append((f"gym `{split}` well-formed", f"{s['well_formed']:.3f}", target if split == "long" else ""))
            out.append((f"gym `{split}` largest first-error share / right-answer-wrong-step",
                        f"{s['max_first_error_share']:.2f} / {s['right_answer_wrong_step']}", "≤ 0.60 / > 0"))
    if (res / "sampling.json").exists():
        s = json.loads((res / "sampling.json").read_text())
        st = s["setup"]
        out.append((f"sampler ÷ `model.generate` tokens/s (batch {st['batch']}, {st['new_tokens']} tokens, "
                    f"{st['device']})", f"{s['sampler_vs_generate_tokens_per_s']:.2f}×", "≥ 1.0"))
        out.append(("prefix reuse: forward tokens with ÷ without (K=8)", f"{s['prefix_reuse_forward_token_ratio']:.3f}",
                    "lower is better"))
    for name in ("sampling_cuda.json", "sampling_cuda_b512.json"):
        if not (res / name).exists():
            continue
        s = json.loads((res / name).read_text())
        st = s["setup"]
        out.append((f"sampler ÷ `model.generate` tokens/s (batch {st['batch']}, {st['new_tokens']} tokens, "
                    f"{s.get('gpu', 'cuda')})", f"{s['sampler_vs_generate_tokens_per_s']:.2f}×", "≥ 1.0"))
    return out


def main() -> None:
    table = ["| measurement | value | target |", "| --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows()]
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = "\n".join([BEGIN, *table, END])
    if BEGIN in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + block + text[end:]
    else:
        text = text.replace("RESULTS_TABLE", block)
    readme.write_text(text)
    print(block)


if __name__ == "__main__":
    main()
