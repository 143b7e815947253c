"""Benchmark: PRM-guided search on the gym `long` split — accuracy vs compute (issue 5).

    .venv/bin/python bench/search.py                      # the shipped gym PRM; writes bench/results/search.json
    .venv/bin/python bench/search.py --prm checker --flip-rate 0.15 --out bench/results/search_checker.json
    .venv/bin/python bench/search.py --seeds 0 --no-write & .venv/bin/python bench/search.py --seeds 1 --no-write &
                                                           # (points are cached: split the work, then run once more)

Measured (fixed seeds, nothing tuned on the `long` split):
* curves: best_of_n (weighted vote; N = 1..16 subsampled from one pool of 16 per seed), beam, dvts and
  early_reject (N in --ns-step, M = min(4, N)), 200 problems per point, 3 seeds (mean ± sd);
* beam_tokens_to_match_bon16_ratio: policy tokens beam search needs to reach best-of-16's accuracy
  (linear interpolation in log tokens along its curve) ÷ best-of-16's tokens; null if it never does;
* early_reject_flops_ratio / early_reject_accuracy_drop: full beam vs early rejection at the largest N;
* mcts_accuracy vs greedy_accuracy_same_budget: MCTS (config and per-problem token budget chosen on
  long_dev by bench/search_tau.py --what mcts) against greedy step-level search on the PRM (one chain,
  M candidates per step at MCTS's temperature, M set so its mean policy tokens match MCTS's), plus
  plain greedy decoding (T = 0);
* a temperature / top-p sweep of best-of-4 (weighted) on the first 100 problems, seed 0.

Which reward model the MCTS keys measure (decided in session 6, written and committed before round 4's
`long` runs, before the shipped PRM's round-4 long_dev selection had finished, and with the stronger
verifier's last `long` result a loss to greedy step search): the results contract's MCTS keys
(mcts_accuracy, greedy_accuracy_same_budget, mcts_solved_per_seed, ...) come from the run guided by
MCTS_HEADLINE_PRM, the stronger verifier shipped in bench/models/strong_verifier; the same keys of the run
guided by the shipped gym PRM move to `shipped_prm_mcts`, and both are in the README table and the bar
chart. Why: on long_dev no selection rule over the shipped PRM's own MCTS pools beats greedy decoding
(bench/mcts_verifiers.py: 0.34 vs 0.335), so with that PRM the item measures the PRM, not the search;
ReST-MCTS* pairs its search with a value model trained for it. The other keys stay on the shipped PRM.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")


RESULTS = ROOT / "bench" / "results"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prm", default="", help="'' = shipped gym PRM, 'checker' = GymCheckerRM, or a model dir")
    ap.add_argument("--flip-rate", type=float, default=0.15)
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--ns-step", default="4,16", help="N for beam/dvts/early_reject")
    ap.add_argument("--bon-n", type=int, default=16)
    ap.add_argument("--methods", default="beam,dvts,early_reject")
    ap.add_argument("--tau", type=int, default=None,
                    help="early rejection's tau (default: chosen on long_dev by bench/search_tau.py, else 4)")
    ap.add_argument("--mcts-budget", type=int, default=None,
                    help="policy tokens per problem for MCTS (default: chosen on long_dev, else 400)")
    ap.add_argument("--mcts-seeds", default="0,1,2", help="MCTS (and its matched greedy baseline) seeds")
    ap.add_argument("--temp-problems", type=int, default=100)
    ap.add_argument("--parts", default="curves,mcts,temps")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="device of the policy and the PRM (cpu or cuda)")
    ap.add_argument("--skip-bon", action="store_true", help="with --parts curves: step methods only (parallel runs)")
    ap.add_argument("--no-write", action="store_true", help="compute (and cache) points only")
    ap.add_argument("--only-cached", action="store_true", help="aggregate cached points only (compute nothing)")
    ap.add_argument("--note", default="", help="how this run was executed (stored in setup.note)")
    ap.add_argument("--out", default=str(RESULTS / "search.json"))
    return ap.parse_args(argv)


def choices(args) -> tuple[tuple[int, str], dict]:
    """(tau, where it came from) and the MCTS choice (budget, config, config_name, source): the command
    line's, else the long_dev selections on file (prmkit.search.presets)."""
    from prmkit.search.presets import chosen_mcts, chosen_tau

    tau = (args.tau, "--tau") if args.tau is not None else chosen_tau(RESULTS)
    if args.mcts_budget is None:
        mcts = chosen_mcts(RESULTS, args.prm if args.prm != "checker" else "")
    else:
        mcts = {"budget": args.mcts_budget, "config": {}, "config_name": "rest-mcts", "source": "--mcts-budget"}
    return tau, mcts


def record_device(cache: Path, device: str) -> Path:
    """Add this run's device to `cache`/device.txt (which devices computed the cached points; the JSON
    reports it); returns that file."""
    import torch

    where = cache / "device.txt"
    cache.mkdir(parents=True, exist_ok=True)
    gpu = f" ({torch.cuda.get_device_name(0)}, torch {torch.__version__})" if device.startswith("cuda") else ""
    line = f"{device}{gpu}"
    lines = where.read_text().splitlines() if where.exists() else []
    if line not in lines:
        where.write_text("\n".join(lines + [line]) + "\n")
    return where


def main(argv=None) -> dict:
    args = parse_args(argv)
    (tau, tau_source), mcts = choices(args)
    import torch

    torch.set_num_threads(args.threads)
    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy
    from prmkit.search import SearchParams
    from prmkit.search.compare import mcts_vs_greedy
    from prmkit.search.presets import BASE
    from prmkit.search.run import make_reward_model
    from prmkit.search.sweep import curves, sweep, temperature_sweep

    t0 = time.perf_counter()
    rm = make_reward_model(args.prm, args.flip_rate, device=args.device)
    tag = "checker%g" % args.flip_rate if args.prm == "checker" else (Path(args.prm).name if args.prm else "gymprm")
    # v2: points carry the PRM's uncached tokens (prefix-cache accounting for both models, search.budget)
    cache = RESULTS / "search_points" / f"{tag}-p{args.problems}-v2"
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=args.batch_size, device=args.device)
    problems = make_split("long", args.problems)
    seeds = [int(s) for s in args.seeds.split(",")]
    ns = [int(n) for n in args.ns_step.split(",")]
    base = SearchParams(tau=tau, **BASE)
    parts = args.parts.split(",")
    where = cache / "device.txt" if args.only_cached else record_device(cache, args.device)
    only = args.only_cached
    points, mcts_res, temps = [], {}, []
    if "curves" in parts:
        if not args.skip_bon:
            points += sweep(problems, sampler, rm, ["best_of_n"], sorted({1, 2, 4, 8, args.bon_n}), seeds, base,
                            cache=cache, only_cached=only)
        points += sweep(problems, sampler, rm, args.methods.split(","), ns, seeds, base, cache=cache, only_cached=only)
    if "mcts" in parts:
        mcts_res = mcts_vs_greedy(problems, sampler, rm, base, mcts["budget"],
                                  [int(x) for x in args.mcts_seeds.split(",")], mcts["config"], cache, only)
        if mcts_res:
            mcts_res.update(mcts_token_budget=mcts["budget"], mcts_config_name=mcts["config_name"])
    if "temps" in parts:
        temps = temperature_sweep(problems[:args.temp_problems], sampler, rm, base, [0.6, 0.8, 1.0], [0.9, 1.0], 4,
                                  seed=0, cache=cache, only_cached=only)
    if args.no_write:
        return {}
    setup = {"tau": tau, "tau_source": tau_source, "mcts_token_budget": mcts["budget"],
             "mcts_budget_source": mcts["source"], "mcts_config_name": mcts["config_name"], "search_params": asdict(base),
             "device": "; ".join(where.read_text().split("\n")).strip("; ") if where.exists() else args.device,
             "prm_parameters": int(rm.num_parameters), "seeds": seeds, "ns_step": ns,
             "sum_of_point_wall_s": round(sum(p.get("wall_s", 0) for p in points), 1)}
    return write_result(args, curves(points), mcts_res, temps, setup, t0)


def write_result(args, curve: dict, mcts_res: dict, temps: list[dict], setup: dict, t0: float) -> dict:
    """Headline keys, plots, the HTML report and the JSON at args.out (the shipped-PRM run also folds in the
    side runs with other reward models)."""
    import torch

    from prmkit.schema import atomic_write_text
    from prmkit.search.sweep import plot_curves

    rm_name = ("GymCheckerRM(flip_rate=%g)" % args.flip_rate if args.prm == "checker"
               else args.prm or "prmkit.rewards.default_gym_prm()")
    result = headline(curve, args.bon_n)
    result.update(mcts_res)
    result["curves"] = curve
    result["temperature_sweep"] = [{k: r[k] for k in ("temperature", "top_p", "accuracy", "policy_tokens_per_problem")}
                                   for r in temps]
    out = Path(args.out)
    png = None
    if curve:  # a run of the MCTS part alone has no curves to draw
        png = plot_curves(curve, out.with_name(out.stem + "_accuracy_vs_compute.png"),
                          f"gym long, {args.problems} problems, {len(setup['seeds'])} seeds, PRM: {rm_name}")
        result["plot"] = rel(png)
    result["reward_model"] = rm_name
    s = setup
    result["setup"] = {"policy": "shipped gym policy (362,496 parameters)", "prm_parameters": s["prm_parameters"],
                       "split": "long", "problems_per_point": args.problems, "seeds": s["seeds"], "ns_step": s["ns_step"],
                       "bon_pool": args.bon_n, "beam_width": "min(4, N)", "tau": s["tau"], "tau_source": s["tau_source"],
                       "mcts_token_budget": s["mcts_token_budget"], "mcts_budget_source": s["mcts_budget_source"],
                       "mcts_config_name": s["mcts_config_name"], "search_params": s["search_params"],
                       "flops": "2 x params x tokens, prefix caching for both models: policy generated tokens + "
                                "PRM uncached tokens (flops_with_prefill: every position each model ran here, the "
                                "policy's prefix re-reads and the PRM's full prefixes included)",
                       "device": s["device"], "threads": args.threads, "torch": torch.__version__,
                       "machine": platform.machine(), "sum_of_point_wall_s": s["sum_of_point_wall_s"], "note": args.note,
                       "this_invocation_wall_s": round(time.perf_counter() - t0, 1)}
    if not args.prm:  # the same bench with other reward models (run with --prm ... --out <file>)
        for key, name in SIDE_RUNS.items():
            side = out.with_name(name)
            if side.exists():
                result[key] = {k: v for k, v in json.loads(side.read_text()).items()
                               if k not in ("curves", "temperature_sweep", "setup")}
        headline_mcts(result, mcts_res)
        by_verifier = out.with_name(out.stem + "_mcts_by_verifier.png")
        if plot_mcts_by_verifier(result, by_verifier):
            result["mcts_by_verifier_plot"] = rel(by_verifier)
    report = write_bench_report(out.with_name(out.stem + "_report.html"), curve, png, result)
    result["report"] = rel(report)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("curves", "temperature_sweep", "setup")}, indent=2))
    return result


MCTS_KEYS = ("mcts_accuracy", "mcts_policy_tokens_per_problem", "greedy_accuracy_same_budget",
             "greedy_same_budget_policy_tokens_per_problem", "greedy_same_budget_candidates_per_step",
             "mcts_flops_per_problem", "greedy_same_budget_flops_per_problem", "mcts_error_free_accuracy",
             "greedy_same_budget_error_free_accuracy",
             "mcts_vs_greedy_per_seed", "greedy_baseline", "greedy_decoding_accuracy",
             "greedy_decoding_policy_tokens_per_problem", "mcts_solved_per_seed", "greedy_decoding_solved",
             "mcts_beats_greedy_same_budget", "mcts_beats_greedy_decoding", "mcts_problems", "mcts_seeds",
             "mcts_config", "mcts_token_budget", "mcts_config_name")
"""what mcts_vs_greedy returns (plus the budget and config name): the keys headline_mcts moves"""
SIDE_RUNS = {"checker_run": "search_checker.json", "strong_verifier_run": "search_strong_verifier.json"}
MCTS_HEADLINE_PRM = "strong_verifier_run"
"""the side run whose MCTS keys are the headline's (module docstring)"""
"""result key -> the JSON of the same bench run with another reward model, folded into search.json"""


def headline_mcts(result: dict, own: dict) -> None:
    """Put the MCTS keys of the MCTS_HEADLINE_PRM side run at the top of `result` (the module docstring says
    why) and move this run's own (`own`, the shipped PRM's) to `shipped_prm_mcts`; unchanged without it."""
    side = result.get(MCTS_HEADLINE_PRM, {})
    if "mcts_accuracy" not in side:
        return
    result["shipped_prm_mcts"] = {k: result.pop(k) for k in own if k in result}
    result["shipped_prm_mcts"]["reward_model"] = result.get("reward_model", "prmkit.rewards.default_gym_prm()")
    result.update({k: side[k] for k in own or side if k in side and k in MCTS_KEYS})
    result["mcts_reward_model"] = side.get("reward_model", MCTS_HEADLINE_PRM)
    result["mcts_reward_model_why"] = "decided before round 4's long runs; see bench/search.py's docstring"


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def plot_mcts_by_verifier(result: dict, path: Path) -> bool:
    """Problems solved (mean over seeds) by MCTS, by greedy step search on the same reward model at
    matched tokens, and by greedy decoding, one group of bars per reward model; False if no run has MCTS."""
    runs = [("shipped gym PRM", result.get("shipped_prm_mcts", result))] + [
        (result[k].get("reward_model", k), result[k]) for k in SIDE_RUNS if k in result]
    runs = [(name, r) for name, r in runs if "mcts_accuracy" in r]
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2.6 * len(runs) + 2, 4))
    bars = (("MCTS", "mcts_accuracy"), ("greedy on the PRM, same tokens", "greedy_accuracy_same_budget"),
            ("greedy decoding", "greedy_decoding_accuracy"))
    for j, (label, key) in enumerate(bars):
        xs = [i + (j - 1) * 0.27 for i in range(len(runs))]
        ys = [100 * r[key] for _, r in runs]
        ax.bar(xs, ys, width=0.27, label=label)
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.1f}", (x, y), ha="center", fontsize=7, xytext=(0, 2), textcoords="offset points")
    def label(name: str, r: dict) -> str:
        seeds = len(r.get("mcts_seeds", [r.get("mcts_seed")]))
        return f"{name}\nMCTS {r['mcts_policy_tokens_per_problem']:.0f} tokens/problem, {seeds} seed{'s' * (seeds > 1)}"

    ax.set_xticks(range(len(runs)), [label(name, r) for name, r in runs], fontsize=8)
    ax.set_ylabel("accuracy on gym long (%), mean over seeds")
    ax.set_title("MCTS vs greedy, by the reward model guiding the search")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def write_bench_report(path: Path, curve: dict, png: Path | None, result: dict) -> Path:
    """The bench's HTML page: the accuracy-vs-compute plot, every point, the headline keys, the sweep."""
    import base64

    from prmkit.report import table_html, write_page
    from prmkit.search.sweep import CURVE_HEADER, curve_rows

    keys = [(k, v) for k, v in result.items() if isinstance(v, (int, float, str, bool)) or v is None]
    temps = [(r["temperature"], r["top_p"], r["accuracy"], round(r["policy_tokens_per_problem"], 1))
             for r in result.get("temperature_sweep", [])]
    def img(p: Path) -> str:
        return f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'

    sections = [("Accuracy vs compute (gym long)", img(png))] if png is not None else []
    sections.append(("Headline", table_html(keys, ("key", "value"))))
    if curve:
        sections.append(("Points (mean ± sd across seeds)", table_html(curve_rows(curve), CURVE_HEADER)))
    if result.get("mcts_by_verifier_plot"):
        sections.append(("MCTS vs greedy, by reward model", img(ROOT / result["mcts_by_verifier_plot"])))
    quality = ROOT / "bench" / "results" / "mcts_verifier_quality.png"   # bench/mcts_verifier_quality.py (long_dev)
    if result.get("mcts_by_verifier_plot") and quality.exists():
        sections.append(("Best-first MCTS by verifier noise (long_dev)", img(quality)))
    if temps:
        sections.append(("Temperature / top-p sweep (best-of-4, weighted)",
                         table_html(temps, ("temperature", "top-p", "accuracy", "policy tokens / problem"))))
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_page(path, "prmkit search benchmark", sections)


def headline(curve: dict, bon_n: int) -> dict:
    """Beam's tokens to match best-of-`bon_n`, and early rejection against full beam at each N (module docstring)."""
    from prmkit.search.compare import tokens_to_reach

    bon = {r["n"]: r for r in curve.get("best_of_n", [])}
    out: dict = {}
    if bon_n in bon and "beam" in curve:
        target, t16 = bon[bon_n]["accuracy"], bon[bon_n]["policy_tokens_per_problem"]
        need = tokens_to_reach(curve["beam"], target)
        top = max(curve["beam"], key=lambda r: r["n"])
        out.update({"bon16_accuracy": target, "bon16_policy_tokens_per_problem": t16,
                    "beam_tokens_to_match_bon16_ratio": None if need is None else need / t16,
                    "beam_matches_bon16": need is not None and need / t16 <= 0.5,
                    "beam_reaches_bon16_accuracy": need is not None,
                    "beam_accuracy_at_max_n": top["accuracy"], "beam_max_n": top["n"],
                    "beam_tokens_ratio_at_max_n": top["policy_tokens_per_problem"] / t16})
    if "beam" in curve and "early_reject" in curve:
        b = {r["n"]: r for r in curve["beam"]}
        e = {r["n"]: r for r in curve["early_reject"]}
        by_n = {n: {"flops_ratio": b[n]["flops_per_problem"] / e[n]["flops_per_problem"],
                    "flops_with_prefill_ratio": b[n]["flops_with_prefill_per_problem"]
                    / e[n]["flops_with_prefill_per_problem"],
                    "policy_tokens_ratio": b[n]["policy_tokens_per_problem"] / e[n]["policy_tokens_per_problem"],
                    "accuracy_drop_points": 100 * (b[n]["accuracy"] - e[n]["accuracy"])}
                for n in sorted(set(b) & set(e))}
        top = max(by_n)
        out.update({"early_reject_flops_ratio": by_n[top]["flops_ratio"],
                    "early_reject_flops_with_prefill_ratio": by_n[top]["flops_with_prefill_ratio"],
                    "early_reject_accuracy_drop": by_n[top]["accuracy_drop_points"], "early_reject_at_n": top,
                    "early_reject_meets_target": by_n[top]["accuracy_drop_points"] <= 1.0
                    and by_n[top]["flops_ratio"] >= 1.4, "early_reject_by_n": by_n})
    return out


if __name__ == "__main__":
    main()
