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
import math
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")


# search settings of every point (fixed in advance; N, M = min(4, N), seed and tau vary per point)
BASE = dict(beam_width=4, temperature=0.8, top_p=1.0, select="weighted", max_step_tokens=16, max_steps=13,
            max_new_tokens=160)
TAU_SELECTION = ROOT / "bench" / "results" / "search_tau_selection.json"


def chosen_tau() -> tuple[int, str]:
    """Early rejection's tau as chosen on the long_dev split (bench/search_tau.py), else the default 4."""
    if TAU_SELECTION.exists():
        sel = json.loads(TAU_SELECTION.read_text())
        return int(sel["chosen_tau"]), f"chosen on long_dev ({TAU_SELECTION.name}): {sel['rule']}"
    return 4, "default (no long_dev selection on file)"


def tokens_to_reach(rows: list[dict], target: float) -> float | None:
    """Policy tokens at which a curve first reaches `target` accuracy (linear in log tokens between
    measured points); None if no point reaches it."""
    rows = sorted(rows, key=lambda r: r["policy_tokens_per_problem"])
    prev = None
    for r in rows:
        if r["accuracy"] >= target:
            if prev is None:
                return r["policy_tokens_per_problem"]
            a0, a1 = prev["accuracy"], r["accuracy"]
            l0, l1 = math.log(prev["policy_tokens_per_problem"]), math.log(r["policy_tokens_per_problem"])
            return math.exp(l0 + (target - a0) / (a1 - a0) * (l1 - l0))
        prev = r
    return None


def main(argv=None) -> dict:
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
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "search.json"))
    args = ap.parse_args(argv)
    if args.mcts_budget is None:
        from bench.search_tau import mcts_selection_name

        sel = TAU_SELECTION.with_name(mcts_selection_name(args.prm if args.prm != "checker" else ""))
        if not sel.exists():  # a reward model without a selection of its own takes the shipped PRM's
            sel = TAU_SELECTION.with_name(mcts_selection_name())
        chosen = json.loads(sel.read_text()) if sel.exists() else {}
        args.mcts_budget = int(chosen.get("chosen_budget", 400))
        args.mcts_config = chosen.get("chosen_config", {})
        args.mcts_config_name = chosen.get("chosen_config_name", "rest-mcts")
        args.mcts_budget_source = f"chosen on long_dev ({sel.name})" if sel.exists() else "default"
    else:
        args.mcts_budget_source, args.mcts_config, args.mcts_config_name = "--mcts-budget", {}, "rest-mcts"
    if args.tau is None:
        args.tau, args.tau_source = chosen_tau()
    else:
        args.tau_source = "--tau"

    import torch

    torch.set_num_threads(args.threads)
    from prmkit.gym.task import make_split
    from prmkit.policy.hf import HFSampler
    from prmkit.policy.sample import default_policy
    from prmkit.search import SearchParams
    from prmkit.search.run import make_reward_model
    from prmkit.search.sweep import (
        curves,
        plot_curves,
        sweep,
        temperature_sweep,
    )

    t0 = time.perf_counter()
    import prmkit.search.sweep as sweep_mod

    sweep_mod.ONLY_CACHED = args.only_cached
    rm = make_reward_model(args.prm, args.flip_rate, device=args.device)
    rm_name = ("GymCheckerRM(flip_rate=%g)" % args.flip_rate if args.prm == "checker"
               else args.prm or "prmkit.rewards.default_gym_prm()")
    tag = "checker%g" % args.flip_rate if args.prm == "checker" else (Path(args.prm).name if args.prm else "gymprm")
    # v2: points carry the PRM's uncached tokens (prefix-cache accounting for both models, search.budget)
    cache = ROOT / "bench" / "results" / "search_points" / f"{tag}-p{args.problems}-v2"
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=args.batch_size, device=args.device)
    problems = make_split("long", args.problems)
    seeds = [int(s) for s in args.seeds.split(",")]
    ns = [int(n) for n in args.ns_step.split(",")]
    base = SearchParams(tau=args.tau, **BASE)
    parts = args.parts.split(",")
    where = cache / "device.txt"  # which device computed the cached points (the JSON reports it)
    if not args.only_cached:
        cache.mkdir(parents=True, exist_ok=True)
        gpu = f" ({torch.cuda.get_device_name(0)}, torch {torch.__version__})" if args.device.startswith("cuda") else ""
        line = f"{args.device}{gpu}"
        lines = where.read_text().splitlines() if where.exists() else []
        if line not in lines:
            where.write_text("\n".join(lines + [line]) + "\n")
    points, mcts_res, temps = [], {}, []
    if "curves" in parts:
        if not args.skip_bon:
            points += sweep(problems, sampler, rm, ["best_of_n"], sorted({1, 2, 4, 8, args.bon_n}), seeds, base,
                            cache=cache)
        points += sweep(problems, sampler, rm, args.methods.split(","), ns, seeds, base, cache=cache)
    if "mcts" in parts:
        mcts_res = mcts_vs_greedy(problems, sampler, rm, base, args, cache)
        if mcts_res:
            mcts_res.update(mcts_token_budget=args.mcts_budget, mcts_config_name=args.mcts_config_name)
    if "temps" in parts:
        temps = temperature_sweep(problems[:args.temp_problems], sampler, rm, base, [0.6, 0.8, 1.0], [0.9, 1.0], 4,
                                  seed=0, cache=cache)
    if args.no_write:
        return {}
    curve = curves(points)
    result = headline(curve, args)
    result.update(mcts_res)
    result["curves"] = curve
    result["temperature_sweep"] = [{k: r[k] for k in ("temperature", "top_p", "accuracy", "policy_tokens_per_problem")}
                                   for r in temps]
    out = Path(args.out)
    png = None
    if curve:  # a run of the MCTS part alone has no curves to draw
        png = plot_curves(curve, out.with_name(out.stem + "_accuracy_vs_compute.png"),
                          f"gym long, {args.problems} problems, {len(seeds)} seeds, PRM: {rm_name}")
        result["plot"] = rel(png)
    result["reward_model"] = rm_name
    result["setup"] = {"policy": "shipped gym policy (362,496 parameters)", "prm_parameters": int(rm.num_parameters),
                       "split": "long", "problems_per_point": args.problems, "seeds": seeds, "ns_step": ns,
                       "bon_pool": args.bon_n, "beam_width": "min(4, N)", "tau": args.tau,
                       "tau_source": args.tau_source,
                       "mcts_token_budget": args.mcts_budget, "mcts_budget_source": args.mcts_budget_source,
                       "mcts_config_name": args.mcts_config_name, "search_params": asdict(base),
                       "flops": "2 x params x tokens, prefix caching for both models: policy generated tokens + "
                                "PRM uncached tokens (flops_with_prefill: every position each model ran here, the "
                                "policy's prefix re-reads and the PRM's full prefixes included)",
                       "device": "; ".join(where.read_text().split("\n")).strip("; ") if where.exists() else args.device,
                       "threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
                       "sum_of_point_wall_s": round(sum(p.get("wall_s", 0) for p in points), 1), "note": args.note,
                       "this_invocation_wall_s": round(time.perf_counter() - t0, 1)}
    from prmkit.schema import atomic_write_text

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
    atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")
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


def headline(curve: dict, args) -> dict:
    bon = {r["n"]: r for r in curve.get("best_of_n", [])}
    out: dict = {}
    if args.bon_n in bon and "beam" in curve:
        target, t16 = bon[args.bon_n]["accuracy"], bon[args.bon_n]["policy_tokens_per_problem"]
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


MCTS_DEFAULT = dict(branch=3, rollout_steps=3, widen=0.0, merge_siblings=False, temperature=0.8)
"""ReST-MCTS*-style settings fixed in advance (the first MCTS runs); other configs come from long_dev selection."""
MCTS_MORE = dict(c_uct=0.7, select="weighted", max_iterations=50, widen_gate=0.0, max_expansions=0)
"""Further MCTS knobs a config may set (their values in every run before round 4 of bench/search_tau.py)."""


def mcts_tag(cfg: dict) -> str:
    """Cache-key suffix of an MCTS config ('' for the default; knobs at their earlier values add nothing, so
    earlier cached points stay valid)."""
    c = {**MCTS_DEFAULT, **MCTS_MORE, **cfg}
    if c == {**MCTS_DEFAULT, **MCTS_MORE}:
        return ""
    tag = f"-r{c['rollout_steps']}-w{c['widen']:g}-m{int(c['merge_siblings'])}-t{c['temperature']:g}"
    for key, mark in (("branch", "b"), ("c_uct", "c"), ("select", ""), ("max_iterations", "i"), ("widen_gate", "g"),
                      ("max_expansions", "x")):   # only where a config moved them from their earlier value
        if c[key] != {**MCTS_DEFAULT, **MCTS_MORE}[key]:
            tag += f"-{mark}{c[key] if isinstance(c[key], str) else format(c[key], 'g')}"
    return tag


def mcts_vs_greedy(problems, sampler, rm, base, args, cache) -> dict:
    """MCTS at a per-problem token budget vs greedy step-level search on the PRM at matched tokens and
    the same sampling temperature (per seed), and plain greedy decoding; accuracies are means over the
    MCTS seeds. `args.mcts_config` overrides MCTS_DEFAULT."""
    from statistics import fmean

    from prmkit.search import SEARCHES
    from prmkit.search.sweep import _cached, point_of

    cfg = {**MCTS_DEFAULT, **(getattr(args, "mcts_config", None) or {})}
    tag = mcts_tag(cfg)
    g0 = _cached(cache, "greedy-t0", lambda: [point_of(SEARCHES["best_of_n"](
        problems, sampler, rm, replace(base, n=1, temperature=0.0, seed=0)), "greedy", 1, 0)])
    rows = []
    for s in [int(x) for x in str(args.mcts_seeds).split(",")]:
        mp = replace(base, token_budget=args.mcts_budget, seed=s, **{**MCTS_MORE, **cfg})
        m = _cached(cache, f"mcts-b{args.mcts_budget}-s{s}{tag}",
                    lambda: [point_of(SEARCHES["mcts"](problems, sampler, rm, mp), "mcts", 0, s)])
        if not m or not g0:
            continue
        M = max(1, round(m[0]["policy_tokens_per_problem"] / g0[0]["policy_tokens_per_problem"]))
        t = cfg["temperature"]
        g = _cached(cache, f"prm-greedy-m{M}-s{s}" + ("" if t == base.temperature else f"-t{t:g}"),
                    lambda: [point_of(SEARCHES["dvts"](problems, sampler, rm,
                                                       replace(base, n=M, beam_width=M, seed=s, temperature=t)),
                                      "prm_greedy", M, s)])
        if g:
            rows.append((s, m[0], g[0], M))
    if not rows:
        return {}
    g0 = g0[0]

    def mean_of(key: str, points: list[dict]) -> float | None:
        return fmean(p[key] for p in points) if all(p.get(key) is not None for p in points) else None

    def solved(point: dict) -> int:
        return round(point["accuracy"] * point["problems"])

    mcts = fmean(m["accuracy"] for _, m, _, _ in rows)
    greedy = fmean(g["accuracy"] for _, _, g, _ in rows)
    return {"mcts_accuracy": mcts,
            "mcts_policy_tokens_per_problem": fmean(m["policy_tokens_per_problem"] for _, m, _, _ in rows),
            "greedy_accuracy_same_budget": greedy,
            "greedy_same_budget_policy_tokens_per_problem": fmean(g["policy_tokens_per_problem"] for _, _, g, _ in rows),
            "greedy_same_budget_candidates_per_step": [M for *_, M in rows],
            # prefix-cached FLOPs of both models (search.budget) and right answers with no gold step error, where
            # the cached points carry them (points computed before error_free_accuracy existed do not)
            "mcts_flops_per_problem": fmean(m["flops_per_problem"] for _, m, _, _ in rows),
            "greedy_same_budget_flops_per_problem": fmean(g["flops_per_problem"] for _, _, g, _ in rows),
            "mcts_error_free_accuracy": mean_of("error_free_accuracy", [m for _, m, _, _ in rows]),
            "greedy_same_budget_error_free_accuracy": mean_of("error_free_accuracy", [g for _, _, g, _ in rows]),
            "mcts_vs_greedy_per_seed": [{"seed": s, "mcts": m["accuracy"], "greedy_same_budget": g["accuracy"],
                                         "mcts_tokens": m["policy_tokens_per_problem"],
                                         "greedy_tokens": g["policy_tokens_per_problem"]} for s, m, g, _ in rows],
            "greedy_baseline": "greedy step-level search on the PRM: one chain, M sampled candidates per step, "
                               "the PRM's best committed (DVTS with one subtree), M chosen per seed to match MCTS's "
                               "mean policy tokens",
            "greedy_decoding_accuracy": g0["accuracy"],
            "greedy_decoding_policy_tokens_per_problem": g0["policy_tokens_per_problem"],
            # compared in problems solved (integers summed over seeds), so float rounding cannot break a tie
            "mcts_solved_per_seed": [solved(m) for _, m, _, _ in rows],
            "greedy_decoding_solved": solved(g0),
            "mcts_beats_greedy_same_budget": sum(solved(m) for _, m, _, _ in rows) > sum(solved(g) for _, _, g, _ in rows),
            "mcts_beats_greedy_decoding": sum(solved(m) for _, m, _, _ in rows) > solved(g0) * len(rows),
            "mcts_problems": rows[0][1]["problems"], "mcts_seeds": [s for s, *_ in rows], "mcts_config": cfg}


if __name__ == "__main__":
    main()
