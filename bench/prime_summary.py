"""Summary of bench/prime.py's runs: curves, primary metrics, the dev table, the rule that fired, the plot.
Reads run files only (no model loads), so it can be rerun at any time on whatever has finished."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench.prime import (ARMS, DEV_GRID, DEV_STEPS, DEV_WINDOW, RANK_WINDOW, SEEDS, STEPS, dev_name, dev_selection, read_records,
                         rloo_filter_reused, window_mean)

ROOT = Path(__file__).resolve().parents[1]


def _evals(recs: list[dict]) -> list[tuple[int, float]]:
    return [(r["step"], r["eval/accuracy"]) for r in recs if "eval/accuracy" in r]


def _partial(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def primary(recs: list[dict]) -> float:
    """Mean of the last four evaluations of a finished run."""
    return statistics.fmean(a for _, a in _evals(recs)[-4:])


def arm_runs(work: Path, arm: str, reused: bool | None) -> dict:
    seeds = {}
    for s in SEEDS:
        src = arm
        if arm == "rloo_filter" and s != 0 and reused:
            src = "prime_faithful_p0"  # identical by the invariant; checked on seed 0
        recs = read_records(work / src / f"seed{s}", STEPS)
        part = recs or _partial(work / src / f"seed{s}")
        seeds[s] = {"finished": recs is not None, "source": f"{src}/seed{s}", "curve": _evals(part),
                    "primary": primary(recs) if recs else None,
                    "rank_acc_before_steps_20_60": window_mean(part) if part else None,
                    "process_abs_mean": window_mean(part, "prime/process_abs", 1, STEPS) if part else None,
                    "process_outcome_corr_mean": window_mean(part, "prime/process_outcome_corr", 1, STEPS) if part else None,
                    "kept_rows_mean": window_mean(part, "kept_rows", 1, STEPS) if part else None,
                    "drawn_prompts_mean": window_mean(part, "refill/drawn_prompts", 1, STEPS) if part else None,
                    "sampled_tokens": part[-1].get("sampled_tokens") if part else None,
                    "steps_done": part[-1]["step"] if part else 0}
    done = [d for d in seeds.values() if d["finished"]]
    out = {"seeds": seeds, "finished_seeds": [s for s, d in seeds.items() if d["finished"]]}
    if done:
        n = min(len(d["curve"]) for d in done)
        out["mean_curve"] = [(done[0]["curve"][i][0], statistics.fmean(d["curve"][i][1] for d in done))
                             for i in range(n)]
        out["primary"] = statistics.fmean(d["primary"] for d in done)
        ranks = [d["rank_acc_before_steps_20_60"] for d in done if d["rank_acc_before_steps_20_60"] is not None]
        out["rank_acc_before_steps_20_60"] = statistics.fmean(ranks) if ranks else None
    return out


def steps_ratio(arms: dict, arm: str, base: str) -> tuple[float | None, str]:
    from prmkit.rl.compare import steps_to_reach

    a, b = arms.get(arm, {}), arms.get(base, {})
    if len(a.get("finished_seeds", [])) < 3 or len(b.get("finished_seeds", [])) < 3:
        return None, "not all three seeds finished"
    target, start = b["mean_curve"][-1][1], b["mean_curve"][0][1]
    if target <= start:
        return None, f"{base} does not end above its start ({start:.3f} -> {target:.3f}): undefined"
    base_steps, arm_steps = steps_to_reach(b["mean_curve"], target), steps_to_reach(a["mean_curve"], target)
    if arm_steps is None:
        best = max(x for _, x in a["mean_curve"])
        return None, (f"{arm} never reached {base}'s final accuracy {target:.3f} in {STEPS} steps (best {best:.3f}; "
                      f"{base} took {base_steps}): ratio above {STEPS / base_steps:.2f}")
    return arm_steps / base_steps, f"{arm} reached {base}'s final {target:.3f} at step {arm_steps}, {base} at {base_steps}"


def decide(arms: dict) -> dict:
    f, z = arms["prime_faithful"], arms["prime_faithful_p0"]
    if len(f["finished_seeds"]) < 3 or len(z["finished_seeds"]) < 3:
        return {"rule": None, "statement": "no rule fires: prime_faithful and prime_faithful_p0 need all three seeds",
                "missing": {a: sorted(set(SEEDS) - set(arms[a]["finished_seeds"])) for a in ARMS}}
    diffs = [f["seeds"][s]["primary"] - z["seeds"][s]["primary"] for s in SEEDS]
    d, se = statistics.fmean(diffs), statistics.stdev(diffs) / len(diffs) ** 0.5
    rho = f["rank_acc_before_steps_20_60"]
    if d <= 0 and rho <= 0.55:
        rule, text = "R1", (f"the process reward does not help at this scale: the implicit PRM ranks the policy's "
                            f"fresh responses at about chance (ranking accuracy {rho:.3f})")
    elif d <= 0:
        rule, text = "R2", (f"the implicit PRM ranks above chance ({rho:.3f}), yet the process reward does not help "
                            "at this scale")
    elif d <= 2 * se:
        rule, text = "R3", "inconclusive: faithful PRIME leads its process-free twin by less than two standard errors"
    else:
        rule, text = "R4", "the process reward helps at this scale"
    return {"rule": rule, "statement": text, "D": d, "SE": se, "per_seed_differences": diffs, "RHO": rho}


def plot(arms: dict, dev_table: list[dict], work: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for arm, d in arms.items():
        if "mean_curve" in d:
            xs, ys = zip(*d["mean_curve"])
            axes[0].plot(xs, ys, marker="o", ms=3, label=f"{arm} ({len(d['finished_seeds'])} seeds)")
        for s, sd in d["seeds"].items():
            if arm.startswith("prime") and sd["curve"] is not None:
                recs = _partial(work / sd["source"])
                pts = [(r["step"], r["prm/rank_acc_before"]) for r in recs if r.get("prm/rank_acc_before") is not None]
                if pts:
                    axes[1].plot(*zip(*pts), lw=0.8, alpha=0.7, label=f"{arm} s{s}")
    for g in DEV_GRID:
        recs = _partial(work / "dev" / dev_name(g) / "seed0")
        pts = [(r["step"], r["prm/rank_acc_before"]) for r in recs if r.get("prm/rank_acc_before") is not None]
        if pts:
            axes[2].plot(*zip(*pts), lw=0.8, label=dev_name(g))
    axes[0].set(xlabel="policy steps", ylabel="held-out test accuracy (seed mean)", title="test arms")
    axes[1].set(xlabel="policy steps", ylabel="prm/rank_acc_before", title="implicit PRM ranking accuracy (test runs)")
    axes[2].set(xlabel="policy steps", ylabel="prm/rank_acc_before", title="dev grid (seed 0)")
    for ax in axes[1:]:
        ax.axhline(0.5, color="#999", ls="--", lw=1)
    axes[1].axvspan(*RANK_WINDOW, color="#eee")
    axes[2].axvspan(*DEV_WINDOW, color="#eee")
    for ax in axes:
        ax.legend(fontsize=6)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def summarize(work: Path, out: Path) -> dict:
    from prmkit.schema import atomic_write_text

    chosen, table = dev_selection(work)
    for g, row in zip(DEV_GRID, table):  # progress of unfinished dev runs (the choice uses finished runs only)
        part = _partial(work / "dev" / dev_name(g) / "seed0")
        row["steps_done"] = part[-1]["step"] if part else 0
        row["rank_acc_before_so_far"] = window_mean(part, lo=DEV_WINDOW[0], hi=DEV_WINDOW[1]) if part else None
    reused = rloo_filter_reused(work)
    arms = {a: arm_runs(work, a, reused) for a in ARMS}
    r_grpo, why_grpo = steps_ratio(arms, "prime_faithful", "grpo")
    r_rloo, why_rloo = steps_ratio(arms, "prime_faithful", "rloo_filter")
    p = {a: arms[a].get("primary") for a in ARMS}
    diff = lambda a, b: None if p[a] is None or p[b] is None else p[a] - p[b]  # noqa: E731
    data = {"budget": {"test_steps": STEPS, "dev_steps": DEV_STEPS, "prompts_per_step": 16, "k": 8, "seeds": SEEDS,
                       "eval_every": 10, "eval_problems": 200,
                       "note": "REDUCED from the bench budget (160 steps) for time; declared in bench/prime.py "
                               "before any run"},
            "dev_selection": {"criterion": f"mean prm/rank_acc_before over steps {DEV_WINDOW[0]}-{DEV_WINDOW[1]}",
                              "table": table, "chosen": chosen},
            "rloo_filter_seeds_1_2_reuse_prime_faithful_p0": reused,
            "arms": arms, "primary_metric": p, "decision": decide(arms),
            "faithful_minus_v1": diff("prime_faithful", "prime_v1"),
            "rloo_filter_minus_grpo": diff("rloo_filter", "grpo"),
            "prime_vs_grpo_steps_ratio": r_grpo, "prime_vs_grpo_note": why_grpo,
            "prime_vs_filtered_rloo_steps_ratio": r_rloo, "prime_vs_filtered_rloo_note": why_rloo,
            "plot": str((out.parent / "prime_curves.png").resolve().relative_to(ROOT)) if out.resolve().is_relative_to(ROOT)
            else str(out.parent / "prime_curves.png")}
    plot(arms, table, work, out.parent / "prime_curves.png")
    atomic_write_text(out, json.dumps(data, indent=2) + "\n")
    print(json.dumps({"primary": p, "decision": data["decision"], "dev": table}, indent=2))
    return data
