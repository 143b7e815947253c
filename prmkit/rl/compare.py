"""`prmkit rl-compare`: several RL methods with the same seeds and budget, side by side.

Runs `prmkit rl` for every (method, seed) into `<out>/<method>/seed<s>/` (each run resumes on its
own, so an interrupted comparison continues), then averages the held-out accuracy curves over
seeds and writes `summary.json`, curve PNGs (accuracy vs policy steps and vs sampled tokens, the
monitors vs steps) and `report.html` with the table: final accuracy, steps and sampled tokens to
reach the first method's (the baseline's) final accuracy, and the reward-hacking monitors.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from prmkit.errors import InputError
from prmkit.rl.config import RLConfig, resume_ignores
from prmkit.rl.methods import ADVANTAGES
from prmkit.rl.trainer import RLRun

MONITOR_KEYS = ("mon/steps_per_solution", "mon/length", "mon/empty_step_frac", "mon/repeated_step_frac",
                "process_reward", "mon/divergence")


@dataclass
class RLCompareConfig:
    """Compare RL methods (same seeds, same budget): curves and a table in report.html."""

    out: str = "runs/rl-compare"
    """run directory (one sub-directory per method and seed, summary.json, report.html)"""
    methods: list[str] = field(default_factory=lambda: ["grpo", "prime", "pure", "pav"])
    """methods to run; the first is the baseline whose final accuracy the others must reach"""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """seeds (each method runs every seed)"""
    steps: int = 40
    """policy steps per run"""
    prompts_per_step: int = 16
    """prompts per step"""
    k: int = 8
    """responses per prompt"""
    lr: float = 1e-4
    """policy learning rate"""
    eval_every: int = 5
    """steps between held-out evaluations"""
    eval_problems: int = 200
    """held-out problems"""
    eval_split: str = "test"
    """held-out gym split"""
    prm: str = ""
    """frozen reward model for the methods that need one (see `prmkit rl --prm`)"""
    model: str = ""
    """starting policy (empty: the shipped gym policy)"""
    max_new_tokens: int = 96
    """most tokens per response"""
    extra: str = ""
    """more `prmkit rl` options for every run as JSON, e.g. '{"process_coef": 0.5}'"""
    threads: int = 0
    """torch CPU threads (0: leave as is)"""


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """First step whose accuracy is >= target (curve = [(step, accuracy)] in step order); None if never."""
    for step, acc in curve:
        if acc >= target - 1e-12:
            return step
    return None


def mean_curve(runs: list[list[dict]], x: str = "step") -> list[tuple[float, float]]:
    """Held-out accuracy averaged over seeds at each evaluation (x = 'step' or 'sampled_tokens', averaged too)."""
    evals = [[r for r in recs if "eval/accuracy" in r] for recs in runs]
    n = min(len(e) for e in evals)
    return [(statistics.fmean(e[i][x] for e in evals), statistics.fmean(e[i]["eval/accuracy"] for e in evals))
            for i in range(n)]


def summarize_runs(results: dict[str, list[list[dict]]]) -> dict:
    """Table numbers from {method: [records of seed 0, seed 1, ...]}; the first method is the baseline."""
    names = list(results)
    base = names[0]
    finals = {m: [[r for r in recs if "eval/accuracy" in r][-1]["eval/accuracy"] for recs in runs]
              for m, runs in results.items()}
    target = statistics.fmean(finals[base])
    start = mean_curve(results[base], "step")[0][1]
    out: dict = {"baseline": base, "baseline_final_accuracy": target, "baseline_start_accuracy": start,
                 "baseline_improved": target > start, "methods": {}}
    for m, runs in results.items():
        by_step = mean_curve(runs, "step")
        by_tokens = mean_curve(runs, "sampled_tokens")
        reach = steps_to_reach([(int(s), a) for s, a in by_step], target)
        tokens = next((t for (s, _), (t, _) in zip(by_step, by_tokens) if reach is not None and int(s) == reach), None)
        monitors = {}
        for key in MONITOR_KEYS:
            vals = [[r[key] for r in recs if key in r] for recs in runs]
            if all(vals):  # means over the first / last 5 readings of each seed, then over seeds
                monitors[key] = {"first": statistics.fmean(statistics.fmean(v[:5]) for v in vals),
                                 "last": statistics.fmean(statistics.fmean(v[-5:]) for v in vals)}
        warnings = sorted({w for recs in runs for r in recs for w in r.get("warnings", [])})
        out["methods"][m] = {
            "final_accuracy": statistics.fmean(finals[m]),
            "final_accuracy_per_seed": finals[m],
            "final_accuracy_sd": statistics.stdev(finals[m]) if len(finals[m]) > 1 else 0.0,
            "start_accuracy": by_step[0][1],
            "best_accuracy": max(a for _, a in by_step),
            "mean_accuracy_after_start": statistics.fmean(a for _, a in by_step[1:]) if len(by_step) > 1 else None,
            "steps_to_grpo_final": reach,
            "tokens_to_grpo_final": tokens,
            "curve_steps": by_step,
            "curve_tokens": by_tokens,
            "monitors": monitors,
            "warnings": warnings,
        }
    return out


def plot_curves(summary: dict, results: dict[str, list[list[dict]]], out: Path) -> list[Path]:
    """Accuracy vs steps, vs sampled tokens, and monitors vs steps; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for m, d in summary["methods"].items():
        for ax, key in zip(axes, ("curve_steps", "curve_tokens")):
            xs, ys = zip(*d[key])
            ax.plot(xs, ys, marker="o", ms=3, label=m)
    for ax, xl in zip(axes, ("policy steps", "sampled tokens")):
        ax.axhline(summary["baseline_final_accuracy"], color="#999", ls="--", lw=1)
        ax.set_xlabel(xl)
        ax.set_ylabel("held-out accuracy (mean over seeds)")
        ax.legend(fontsize=8)
    paths.append(out / "accuracy_curves.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    keys = ("mon/steps_per_solution", "mon/length", "mon/repeated_step_frac", "process_reward")
    fig, axes = plt.subplots(1, len(keys), figsize=(15, 3.4))
    for m, runs in results.items():
        for ax, key in zip(axes, keys):
            series = [[r[key] for r in recs if key in r] for recs in runs]
            if not all(series):
                continue
            n = min(map(len, series))
            steps = [r["step"] for r in runs[0] if key in r][:n]
            ax.plot(steps, [statistics.fmean(s[i] for s in series) for i in range(n)], label=m)
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("policy steps")
    axes[0].legend(fontsize=8)
    paths.append(out / "monitors.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def write_report(summary: dict, plots: list[Path], out: Path, title: str = "prmkit rl-compare") -> Path:
    from prmkit.report import png_to_img, table_html, write_page

    base = summary["baseline"]
    rows = []
    for m, d in summary["methods"].items():
        rows.append((m, d["start_accuracy"], d["final_accuracy"], d["final_accuracy_sd"],
                     "-" if d["steps_to_grpo_final"] is None else d["steps_to_grpo_final"],
                     "-" if d["tokens_to_grpo_final"] is None else int(d["tokens_to_grpo_final"])))
    table = table_html(rows, ("method", "start acc", "final acc (mean)", "sd over seeds",
                              f"steps to {base} final", f"tokens to {base} final"))
    mon_rows = []
    for m, d in summary["methods"].items():
        mon = d["monitors"]
        mon_rows.append((m, *[f"{mon[k]['first']:.3f} → {mon[k]['last']:.3f}" if k in mon else "-"
                              for k in MONITOR_KEYS], "; ".join(d["warnings"]) or "-"))
    mon_table = table_html(mon_rows, ("method", *MONITOR_KEYS, "warnings"))
    sections = [("Held-out accuracy", png_to_img(plots[0]) + table),
                ("Reward-hacking monitors (mean of the first 5 steps → mean of the last 5 steps, mean over seeds)", png_to_img(plots[1]) + mon_table),
                ("Budget", table_html([(k, json.dumps(v)) for k, v in summary.get("budget", {}).items()],
                                      ("setting", "value")))]
    return write_page(out / "report.html", title, sections)


def run_config(cfg: RLCompareConfig, method: str, seed: int, run_root: Path | None = None) -> RLConfig:
    """The `prmkit rl` settings of one (method, seed) run of a comparison."""
    extra = json.loads(cfg.extra) if cfg.extra else {}
    return RLConfig(**{**dict(out=str(Path(run_root or cfg.out) / method / f"seed{seed}"), reward=method,
                              model=cfg.model, prm=cfg.prm, seed=seed, steps=cfg.steps,
                              prompts_per_step=cfg.prompts_per_step, k=cfg.k, lr=cfg.lr, eval_every=cfg.eval_every,
                              eval_problems=cfg.eval_problems, eval_split=cfg.eval_split,
                              max_new_tokens=cfg.max_new_tokens, threads=cfg.threads, save_policy=False,
                              tensorboard=False), **extra})


def finished_records(rc: RLConfig) -> list[dict] | None:
    """The metrics of a run that already reached its last step with these settings (read from its
    files, no models loaded; e.g. runs made on another machine without their checkpoints), else None."""
    from prmkit.rundir import config_differences

    out = Path(rc.out)
    metrics, saved = out / "metrics.jsonl", out / "config.json"
    if not metrics.exists() or not saved.exists():
        return None
    records = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    if not records or records[-1].get("step") != rc.steps:
        return None
    if config_differences(json.loads(saved.read_text()), rc, resume_ignores(rc)):
        return None
    return records


def run_compare(cfg: RLCompareConfig, run_root: Path | None = None) -> dict:
    """Run (or resume) every method x seed and write summary.json, the PNGs and report.html into
    cfg.out; runs live in `<run_root or cfg.out>/<method>/seed<s>/`."""
    from prmkit.config import save_config
    from prmkit.schema import atomic_write_text

    unknown = [m for m in cfg.methods if m not in ADVANTAGES]
    if unknown or not cfg.methods:
        raise InputError(f"expected methods from {sorted(ADVANTAGES)}, got {cfg.methods}", field="methods")
    try:
        extra = json.loads(cfg.extra) if cfg.extra else {}
    except json.JSONDecodeError as e:
        raise InputError(f"--extra must be a JSON object: {e}", field="extra") from None
    fields = {f.name for f in dataclasses.fields(RLConfig)}
    if not isinstance(extra, dict) or set(extra) - fields:
        raise InputError(f"--extra keys must be `prmkit rl` options, got {sorted(set(extra) - fields)}", field="extra")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(out, cfg)
    results: dict[str, list[list[dict]]] = {}
    for m in cfg.methods:
        results[m] = [finished_records(run_config(cfg, m, s, run_root)) or RLRun(run_config(cfg, m, s, run_root)).train()
                      for s in cfg.seeds]
    summary = summarize_runs(results)
    summary["budget"] = {"steps": cfg.steps, "prompts_per_step": cfg.prompts_per_step, "k": cfg.k, "lr": cfg.lr,
                         "seeds": list(cfg.seeds), "eval_problems": cfg.eval_problems, "eval_split": cfg.eval_split,
                         "eval_every": cfg.eval_every, "extra": extra,
                         "reward_model": next((r.get("reward_model") for runs in results.values() for recs in runs
                                               for r in recs if r.get("reward_model")), "")}
    plots = plot_curves(summary, results, out)
    summary["plots"] = [str(p) for p in plots]
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_report(summary, plots, out)
    return summary


def run(cfg: RLCompareConfig) -> dict:
    summary = run_compare(cfg)
    base = summary["baseline"]
    for m, d in summary["methods"].items():
        print(f"{m:10s} final {d['final_accuracy']:.3f}  steps to {base} final: {d['steps_to_grpo_final']}")
    print(f"report: {Path(cfg.out) / 'report.html'}")
    return summary
