"""`prmkit eval-search`: accuracy vs compute for several search strategies and budgets.

    prmkit eval-search --split long --num-problems 200 --methods best_of_n,beam,dvts,early_reject \\
        --ns 1,2,4,8,16 --seeds 0,1,2 --temperatures 0.6,0.8,1.0 --top-ps 0.9,1.0

For every (method, N, seed) one search run is measured (accuracy, policy tokens, PRM tokens,
FLOPs per problem); best-of-N points are subsampled from one pool of max(N) per seed, as
search-and-learn scores them. Points are cached in `<out>/points/` so an interrupted sweep
resumes. `report.html` draws accuracy vs policy tokens and vs total FLOPs, one line per method,
with error bars across seeds (one standard deviation), and a temperature/top-p table
("Bag of Tricks" style, best-of-N with weighted vote).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, ClassVar, Sequence

from prmkit.config import save_config
from prmkit.errors import InputError
from prmkit.progress import progress
from prmkit.prompting import record_format
from prmkit.report import table_html, write_page
from prmkit.schema import atomic_write_text
from prmkit.search import SEARCHES
from prmkit.search.base import SearchParams
from prmkit.search.best_of_n import subsample
from prmkit.search.run import SearchSources


@dataclass
class EvalSearchConfig(SearchParams, SearchSources):
    """Sweep search strategies and budgets; plot accuracy vs policy tokens and vs FLOPs (report.html).

    The search knobs are `SearchParams`'s own and the problem / model fields `SearchSources`'s (inherited
    with their docs; a few defaults differ here); N, M (capped at N) and the seed are set per point. MCTS
    takes its budget in tokens: at N it gets N x `mcts_tokens_per_n` policy tokens per problem."""

    CLI_HIDDEN: ClassVar[tuple[str, ...]] = ("n", "seed", "token_budget")   # set per point (--ns, --seeds)

    out: str = "runs/eval-search"
    """run directory (points/, curves.json, report.html, config.json)"""
    num_problems: int = 200
    """gym problems to draw when --problems is empty"""
    threads: int = 1
    """torch CPU threads (0 = leave torch's default)"""
    methods: str = "best_of_n,beam,dvts,early_reject"
    """comma-separated strategies (best_of_n, beam, dvts, early_reject, mcts)"""
    ns: str = "1,2,4,8,16"
    """comma-separated budgets N"""
    seeds: str = "0,1,2"
    """comma-separated seeds (error bars across them)"""
    mcts_tokens_per_n: int = 64
    """mcts: policy tokens per problem per unit of N (about one gym long-split solution)"""
    max_step_tokens: int = 32
    """most tokens of one step"""
    max_steps: int = 16
    """most steps of a solution (beam, dvts, early_reject, mcts)"""
    max_new_tokens: int = 256
    """most tokens of a whole solution (best_of_n, the last step of a step-level search, rollouts)"""
    temperatures: str = ""
    """temperature sweep for best-of-N (comma-separated; empty = skip)"""
    top_ps: str = "1.0"
    """top-p values crossed with --temperatures"""
    sweep_n: int = 4
    """N of the temperature/top-p sweep"""


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def point_of(run, method: str, n: int, seed: int, **extra) -> dict:
    m = max(1, len(run.results))
    c = run.compute
    return {"method": method, "n": n, "seed": seed, "problems": len(run.results), "accuracy": run.accuracy,
            "error_free_accuracy": run.error_free_accuracy,
            "policy_tokens_per_problem": c.policy_tokens / m, "prm_tokens_per_problem": c.prm_tokens / m,
            "prm_uncached_tokens_per_problem": c.prm_uncached_tokens / m,
            "flops_per_problem": c.flops / m, "flops_with_prefill_per_problem": c.flops_with_prefill / m,
            "wall_s": c.wall_s, **extra}


def cached_points(cache: Path | None, key: str, fn: Callable[[], list[dict]], only_cached: bool = False) -> list[dict]:
    """The points stored under `key` in the folder `cache` (`<cache>/<key>.json`), else `fn()`, written there
    atomically before it is returned. `only_cached`: a missing key gives [] and nothing is computed. No
    `cache`: always `fn()`."""
    if cache is None:
        return fn()

    path = cache / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    if only_cached:
        return []
    pts = fn()
    atomic_write_text(path, json.dumps(pts, indent=1) + "\n")
    return pts


def point_tag(method: str, n: int, seed: int, tau: int | None = None) -> str:
    """Cache key of one (method, N, seed) point of `sweep` (best_of_n: its pool of N; early_reject adds tau,
    the one knob of the shared settings that only it reads)."""
    return f"{method}-{n}-s{seed}" + (f"-tau{tau}" if method == "early_reject" else "")


def mcts_point_tag(n: int, tokens_per_n: int, seed: int) -> str:
    """Cache key of `sweep`'s MCTS point at N (token budget N x tokens_per_n)."""
    return f"mcts-{n}x{tokens_per_n}-s{seed}"


def temperature_tag(temperature: float, top_p: float, n: int, seed: int) -> str:
    """Cache key of one point of `temperature_sweep`."""
    return f"temp-{temperature}-topp-{top_p}-n{n}-s{seed}"


def sweep(problems, sampler, rm, methods: Sequence[str], ns: Sequence[int], seeds: Sequence[int], base,
          cache: Path | None = None, progress_desc: str = "eval-search", mcts_tokens_per_n: int = 64,
          only_cached: bool = False) -> list[dict]:
    """One point per (method, N, seed); `base` is a SearchParams whose n/beam_width/seed are replaced
    (for mcts: token_budget = N x `mcts_tokens_per_n`). Points are read from / written to `cache`
    (`cached_points`; `only_cached`: compute none)."""
    from dataclasses import replace


    jobs = [(m, None if m == "best_of_n" else n, s) for s in seeds for m in methods
            for n in ([max(ns)] if m == "best_of_n" else ns)]
    bar = progress(total=len(jobs), desc=progress_desc)
    points: list[dict] = []
    for method, n, seed in jobs:
        if method == "best_of_n":
            def fn(seed=seed):
                run = SEARCHES["best_of_n"](problems, sampler, rm, replace(base, n=max(ns), seed=seed))
                return [{"method": "best_of_n", "n": k, "seed": seed, "problems": len(problems),
                         "wall_s": run.compute.wall_s, **subsample(run, k)} for k in ns]
            points += cached_points(cache, point_tag("best_of_n", max(ns), seed), fn, only_cached)
        elif method == "mcts":
            def fn(n=n, seed=seed):
                p = replace(base, token_budget=n * mcts_tokens_per_n, seed=seed)
                return [point_of(SEARCHES["mcts"](problems, sampler, rm, p), "mcts", n, seed)]
            points += cached_points(cache, mcts_point_tag(n, mcts_tokens_per_n, seed), fn, only_cached)
        else:
            def fn(method=method, n=n, seed=seed):
                p = replace(base, n=n, beam_width=min(base.beam_width, n), seed=seed)
                return [point_of(SEARCHES[method](problems, sampler, rm, p), method, n, seed)]
            points += cached_points(cache, point_tag(method, n, seed, base.tau), fn, only_cached)
        bar.update(1)
    bar.close()
    return points


def curves(points: Sequence[dict]) -> dict[str, list[dict]]:
    """Per method and N: mean and standard deviation across seeds of accuracy, tokens and FLOPs."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for p in points:
        groups.setdefault((p["method"], p["n"]), []).append(p)
    out: dict[str, list[dict]] = {}
    for (method, n), ps in sorted(groups.items()):
        row = {"n": n, "seeds": sorted(p["seed"] for p in ps), "problems": ps[0]["problems"]}
        for key in ("accuracy", "policy_tokens_per_problem", "prm_tokens_per_problem", "flops_per_problem",
                    "flops_with_prefill_per_problem"):
            vals = [p[key] for p in ps if key in p]
            if vals:
                row[key] = statistics.fmean(vals)
                row[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.setdefault(method, []).append(row)
    return out


def plot_curves(curve: dict[str, list[dict]], path: Path, title: str = "") -> Path:
    """Accuracy vs policy tokens and vs total FLOPs (log x), one line per method, error bars = 1 sd."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "policy_tokens_per_problem", "policy tokens generated per problem"),
                           (axes[1], "flops_per_problem", "total FLOPs per problem (policy + PRM)")):
        for method, rows in curve.items():
            rows = sorted(rows, key=lambda r: r[key])
            ax.errorbar([r[key] for r in rows], [r["accuracy"] for r in rows],
                        yerr=[r.get("accuracy_std", 0.0) for r in rows], marker="o", capsize=3, label=method)
            for r in rows:
                ax.annotate(f"N={r['n']}", (r[key], r["accuracy"]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def curve_rows(curve: dict[str, list[dict]]) -> list[tuple]:
    return [(m, r["n"], len(r["seeds"]), r["problems"], f"{r['accuracy']:.3f} ± {r.get('accuracy_std', 0):.3f}",
             round(r["policy_tokens_per_problem"], 1), f"{r['flops_per_problem']:.3e}")
            for m, rows in curve.items() for r in rows]


CURVE_HEADER = ("method", "N", "seeds", "problems", "accuracy ± sd", "policy tokens / problem", "FLOPs / problem")


def write_report(out: Path, curve: dict, png: Path, extra: list[tuple[str, str]] = (), title: str = "") -> Path:
    img = f'<img src="data:image/png;base64,{__import__("base64").b64encode(png.read_bytes()).decode()}">'
    sections = [("Accuracy vs compute", img), ("Points", table_html(curve_rows(curve), CURVE_HEADER)), *extra]
    return write_page(out / "report.html", title or "prmkit eval-search", sections)


def temperature_sweep(problems, sampler, rm, base, temperatures, top_ps, n: int, seed: int = 0,
                      cache: Path | None = None, only_cached: bool = False) -> list[dict]:
    """Best-of-N (base.select) accuracy for each temperature x top-p ("Bag of Tricks"-style sweep)."""
    from dataclasses import replace


    rows = []
    for t in temperatures:
        for tp in top_ps:
            def fn(t=t, tp=tp):
                run = SEARCHES["best_of_n"](problems, sampler, rm, replace(base, n=n, temperature=t, top_p=tp, seed=seed))
                return [point_of(run, "best_of_n", n, seed, temperature=t, top_p=tp)]
            rows += cached_points(cache, temperature_tag(t, tp, n, seed), fn, only_cached)
    return rows


def _config_key(cfg: EvalSearchConfig) -> str:
    """Cached points are reused only by a run with the same settings (methods, ns and seeds aside)."""
    import hashlib

    d = {k: v for k, v in asdict(cfg).items() if k not in ("out", "methods", "ns", "seeds", "temperatures", "top_ps",
                                                           "batch_size", "threads", "n", "seed",
                                                           "token_budget", "mcts_tokens_per_n")}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def run(cfg: EvalSearchConfig) -> dict:
    unknown = [m for m in cfg.methods.split(",") if m not in SEARCHES]
    if unknown:
        raise InputError(f"unknown search method(s) {unknown}; expected names from {sorted(SEARCHES)}",
                         field="methods")
    problems, sampler, rm = cfg.load(cfg.aggregation)
    out = Path(cfg.out)
    save_config(out, cfg)

    record_format(out, sampler)  # the policy's (the reward model's is in its own dir)
    base = SearchParams(**{f.name: getattr(cfg, f.name) for f in fields(SearchParams)})
    cache = out / "points" / _config_key(cfg)
    points = sweep(problems, sampler, rm, cfg.methods.split(","), _ints(cfg.ns), _ints(cfg.seeds), base,
                   cache=cache, mcts_tokens_per_n=cfg.mcts_tokens_per_n)
    curve = curves(points)
    extra = []
    temps = []
    if cfg.temperatures:
        temps = temperature_sweep(problems, sampler, rm, base, _floats(cfg.temperatures), _floats(cfg.top_ps),
                                  cfg.sweep_n, cache=cache)
        extra.append((f"Temperature / top-p sweep (best-of-{cfg.sweep_n}, {cfg.select})",
                      table_html([(r["temperature"], r["top_p"], r["accuracy"], round(r["policy_tokens_per_problem"], 1))
                                  for r in temps], ("temperature", "top-p", "accuracy", "policy tokens / problem"))))
    png = plot_curves(curve, out / "accuracy_vs_compute.png", f"{len(problems)} problems")
    write_report(out, curve, png, extra)
    result = {"curves": curve, "points": points, "temperature_sweep": temps, "config": asdict(cfg)}
    atomic_write_text(out / "curves.json", json.dumps(result, indent=2) + "\n")
    for row in curve_rows(curve):
        print(" | ".join(map(str, row)))
    print(f"report: {out / 'report.html'}")
    return result
