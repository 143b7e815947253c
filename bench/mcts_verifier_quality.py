"""How good must the verifier be for best-first MCTS to pay? The gym's exact checker with a share of its
verdicts flipped guides best-first MCTS and greedy step search at matched tokens.

    .venv/bin/python bench/mcts_verifier_quality.py     # ~10 min on 2 CPU cores; writes mcts_verifier_quality.json

On `long_dev` (200 problems, seed 0; nothing here looks at the long split, and nothing is chosen from it):
for each flip rate, `prmkit.search.presets.BEST_FIRST` at the token budget the long_dev rule chose for the
stronger verifier (2,000 tokens per problem), against greedy step search on the same checker with M
candidates per step, M set to match MCTS's policy tokens, and plain greedy decoding (bench/search.py's
`mcts_vs_greedy`). A flip turns a right step's verdict to "wrong" or a wrong step's to "right"
(seeded by the step, so a step always gets the same verdict). The stronger verifier's own long_dev
point (search_mcts_selection_strong_verifier.json) is copied into the JSON for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")

FLIP_RATES = (0.0, 0.05, 0.15, 0.3)
BUDGET = 2000
OUT = ROOT / "bench" / "results" / "mcts_verifier_quality.json"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flip-rates", default=",".join(map(str, FLIP_RATES)))
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--no-write", action="store_true", help="compute (and cache) points only")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy
    from prmkit.schema import atomic_write_text
    from prmkit.search import SearchParams
    from prmkit.search.compare import mcts_vs_greedy
    from prmkit.search.presets import BASE, BEST_FIRST, mcts_config
    from prmkit.search.run import make_reward_model

    t0 = time.perf_counter()
    problems = make_split("long_dev", args.problems)
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=256)
    rows = []
    for flip in [float(x) for x in args.flip_rates.split(",")]:
        cache = ROOT / "bench" / "results" / "search_points" / f"checker{flip:g}-long_dev-p{args.problems}-v2"
        cache.mkdir(parents=True, exist_ok=True)
        r = mcts_vs_greedy(problems, sampler, make_reward_model("checker", flip), SearchParams(tau=4, **BASE),
                           BUDGET, [0], mcts_config(BEST_FIRST), cache)
        rows.append({"flip_rate": flip, "mcts": r["mcts_accuracy"], "greedy_same_budget": r["greedy_accuracy_same_budget"],
                     "greedy_decoding": r["greedy_decoding_accuracy"], "mcts_tokens": r["mcts_policy_tokens_per_problem"],
                     "greedy_candidates_per_step": r["greedy_same_budget_candidates_per_step"][0],
                     "mcts_error_free": r["mcts_error_free_accuracy"],
                     "greedy_same_budget_error_free": r["greedy_same_budget_error_free_accuracy"]})
        print(json.dumps(rows[-1]), flush=True)
    if args.no_write:
        return {}
    sel = ROOT / "bench" / "results" / "search_mcts_selection_strong_verifier.json"
    strong = None
    if sel.exists():
        s = json.loads(sel.read_text())
        run = next((r for r in s["runs"] if r["config"] == s["chosen_config_name"] and r["budget"] == s["chosen_budget"]),
                   None)
        if run:
            strong = {"mcts": run["mcts"], "greedy_same_budget": run["greedy_same_budget"],
                      "mcts_tokens": run["mcts_tokens"], "config": s["chosen_config_name"]}
    out = {"split": "long_dev", "problems": args.problems, "seed": 0, "budget": BUDGET,
           "mcts_config": mcts_config(BEST_FIRST), "by_flip_rate": rows, "strong_verifier_long_dev": strong,
           "wall_s": round(time.perf_counter() - t0, 1)}
    out["plot"] = str(plot(out, OUT.with_suffix(".png")).relative_to(ROOT))
    atomic_write_text(OUT, json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


def plot(out: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = out["by_flip_rate"]
    xs = [100 * r["flip_rate"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(xs, [100 * r["mcts"] for r in rows], marker="o", label="best-first MCTS")
    ax.plot(xs, [100 * r["greedy_same_budget"] for r in rows], marker="s",
            label="greedy step search, same policy tokens")
    ax.plot(xs, [100 * r["greedy_decoding"] for r in rows], linestyle="--", color="gray", label="greedy decoding")
    for r, x in zip(rows, xs):
        ax.annotate(f"{r['mcts_tokens']:.0f} tok", (x, 100 * r["mcts"]), fontsize=7, xytext=(3, 4),
                    textcoords="offset points")
    ax.set_xlabel("checker verdicts flipped (%)")
    ax.set_ylabel(f"accuracy on gym long_dev (%), {out['problems']} problems, seed 0")
    ax.set_title("Best-first MCTS vs greedy step search, by verifier noise")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
