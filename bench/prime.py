"""PRIME faithful to its reference code vs the paper's own baseline, on the gym: a pre-registered experiment.

    nice .venv/bin/python bench/prime.py                # run (or resume) everything, then write the JSON + plot
    nice .venv/bin/python bench/prime.py --summarize    # only (re)write bench/results/prime.json from finished runs

RULES (written and committed before any run of this script; nothing below is changed after seeing results)

Budget. REDUCED from the bench budget (160 steps x 16 prompts x 8 samples) because the machine (2 cores,
shared by about eight jobs until ~15:10 UTC, session ends 16:00) cannot finish 6 arms x 3 seeds of 160 steps
plus a dev grid in time (measured: ~1.1 CPU-s per GRPO step, ~3.4 CPU-s per faithful-PRIME step with 4x
oversampling). Test runs: 80 steps x 16 prompts x 8 samples, evaluation every 10 steps on 200 test problems
(one T=1 sample each, fixed seeds), everything else as bench/rl.py's comparison (Adam lr 3e-5, 1-D params
x100, minibatch 32, prompts of 2-5 operations, 96 new tokens, no KL). Refill rounds sample 2x the prompts
still needed instead of the reference's 4x: the batch is the same for any round size (the first passing
prompts of a seeded stream, each prompt's samples seeded by its stream position; tested in
tests/unit/test_prime_faithful.py), only the discarded compute differs. Sampled tokens count discarded ones.

Dev selection (dev only, never test). PRIME faithful to the reference (batch_norm, whitening, the
reference's leave-one-out, token granularity, filter [0.2, 0.8] with refill, AdamW wd 0, clip 10), seed 0,
60 steps, training prompts from the train split, held-out evaluation on the dev split only (50 problems,
start and end; not used for the choice). Grid over PRM lr x beta x PRM passes per step, a half fraction of
the 2^3 design (REDUCED from the full 8 for time; each factor at both levels twice):
    (lr 1e-6, beta 0.05, passes 1)  <- the reference's settings
    (lr 1e-6, beta 0.5,  passes 2)
    (lr 1e-5, beta 0.05, passes 2)
    (lr 1e-5, beta 0.5,  passes 1)
Criterion: mean of `prm/rank_acc_before` (the reference's pairwise ranking accuracy of the implicit PRM on
each step's fresh rollouts, before its update) over steps 20-60. The highest wins; ties go to the earlier
row. Held-out accuracy is never used.

Test arms (seeds 0, 1, 2; same budget):
    grpo               outcome GRPO, no filter (the bench's baseline)
    rloo               outcome RLOO, no filter
    rloo_filter        RLOO with the accuracy filter and refill, whitened (the paper's baseline as its code runs it)
    prime_v1           PRIME as benchmarked in bench/results/rl.json (prmkit.rl.prime.AS_BENCHMARKED_V1: raw
                       beta*q, paper leave-one-out, no whitening, filter drops rows, Adam lr 1e-4, clip 1)
    prime_faithful     PRIME faithful to the reference with the dev-chosen PRM settings
    prime_faithful_p0  the same with the process coefficient 0
With process coefficient 0, faithful PRIME is exactly rloo_filter (tests/invariants/
test_prime_faithful_invariant.py: same advantages, same policy). So rloo_filter runs on seed 0 only; if its
evaluation curve equals prime_faithful_p0's seed-0 curve, seeds 1 and 2 reuse prime_faithful_p0's curves
(stated in the JSON); if not, it runs on every seed.

Primary metric of an arm: the seed-mean of the mean of its last four evaluations (steps 50, 60, 70, 80).
Decision, on test (first rule that holds fires):
    D   = primary(prime_faithful) - primary(prime_faithful_p0)
    SE  = standard deviation of the three per-seed differences / sqrt(3)
    RHO = mean over prime_faithful's test seeds of mean prm/rank_acc_before over steps 20-60
    R1  D <= 0 and RHO <= 0.55      -> "the process reward does not help at this scale: the implicit PRM
                                        ranks the policy's fresh responses at about chance (RHO)"
    R2  D <= 0 and RHO > 0.55       -> "the implicit PRM ranks above chance, yet the process reward does
                                        not help at this scale"
    R3  0 < D <= 2 SE               -> "inconclusive: faithful PRIME leads its process-free twin by less
                                        than two standard errors"
    R4  D > 2 SE                    -> "the process reward helps at this scale"
Reported alongside, not decisive: primary(prime_faithful) - primary(prime_v1) (what faithfulness changes),
primary(rloo_filter) - primary(grpo) (what the paper's baseline changes), and
`prime_vs_grpo_steps_ratio` / `prime_vs_filtered_rloo_steps_ratio`: first evaluation step at which
prime_faithful's seed-mean curve reaches the baseline's seed-mean final accuracy, divided by the
baseline's own such step (null when never reached, or when the baseline does not end above its start).
If runs are cut off, the JSON holds whatever finished and says which arms/seeds are missing; no rule
fires without all three seeds of prime_faithful and prime_faithful_p0.

AMENDMENT (14:13 UTC, before any test run; dev runs had reached step 3 and were restarted from scratch): under
the shared machine's load a PRIME step took 35-170 s, so the budget is cut further: test runs 60 steps
(evaluations every 10 steps: the primary metric is the mean of steps 30, 40, 50, 60); dev runs 40 steps and
the dev criterion is mean prm/rank_acc_before over steps 20-40 (rules R1-R4 keep RHO over steps 20-60, which
for 60-step test runs is steps 20-60). Job order puts the decision's arms (prime_faithful, prime_faithful_p0)
first once dev has chosen. Nothing else changes.

Writes bench/results/prime.json and bench/results/prime_curves.png. Runs live in runs/bench_prime/
(resumable: each run checkpoints; rerunning continues where it stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")

STEPS, DEV_STEPS, SEEDS = 60, 40, [0, 1, 2]
COMMON = dict(prompts_per_step=16, k=8, lr=3e-5, lr_1d_mult=100.0, minibatch=32, gym_max_ops=5, max_new_tokens=96,
              threads=1, tensorboard=False, save_policy=False, checkpoint_every=5)
TEST = dict(steps=STEPS, eval_every=10, eval_problems=200, eval_split="test")
DEV = dict(steps=DEV_STEPS, eval_every=0, eval_problems=50, eval_split="dev")
REFILL = dict(refill_oversample=2.0)
DEV_GRID = [dict(prime_lr=1e-6, prime_beta=0.05, prime_passes=1), dict(prime_lr=1e-6, prime_beta=0.5, prime_passes=2),
            dict(prime_lr=1e-5, prime_beta=0.05, prime_passes=2), dict(prime_lr=1e-5, prime_beta=0.5, prime_passes=1)]
RANK_WINDOW = (20, 60)  # test runs; dev: DEV_WINDOW
DEV_WINDOW = (20, 40)
ARMS = ["grpo", "rloo", "rloo_filter", "prime_v1", "prime_faithful", "prime_faithful_p0"]
NEEDS_DEV = {"prime_faithful", "prime_faithful_p0"}


def arm_options(arm: str, chosen: dict | None) -> dict:
    from prmkit.rl.prime import AS_BENCHMARKED_V1

    if arm in ("grpo", "rloo"):
        return dict(reward=arm)
    if arm == "rloo_filter":
        return dict(reward="rloo", acc_filter="on", acc_filter_mode="refill", whiten=True, **REFILL)
    if arm == "prime_v1":
        return dict(reward="prime", **AS_BENCHMARKED_V1)
    if chosen is None:
        raise ValueError(f"{arm} needs the dev selection")
    return dict(reward="prime", **REFILL, **chosen, **({"process_coef": 0.0} if arm == "prime_faithful_p0" else {}))


def dev_name(g: dict) -> str:
    return f"lr{g['prime_lr']:g}_beta{g['prime_beta']:g}_passes{g['prime_passes']}"


def run_config(work: Path, job: tuple, chosen: dict | None):
    from prmkit.rl.config import RLConfig

    kind, name, seed = job
    if kind == "dev":
        g = next(g for g in DEV_GRID if dev_name(g) == name)
        return RLConfig(out=str(work / "dev" / name / f"seed{seed}"), reward="prime", seed=seed, **COMMON, **DEV,
                        **REFILL, **g)
    return RLConfig(out=str(work / name / f"seed{seed}"), seed=seed, **COMMON, **TEST, **arm_options(name, chosen))


def jobs() -> list[tuple]:
    """Priority order: the dev grid and the arms that do not need it first, then seed by seed."""
    out = [("dev", dev_name(g), 0) for g in DEV_GRID]
    out += [("test", a, s) for s in SEEDS for a in ("prime_faithful", "prime_faithful_p0")]
    out += [("test", a, s) for a in ("grpo", "prime_v1", "rloo") for s in SEEDS]
    return out + [("test", "rloo_filter", s) for s in SEEDS]


def read_records(out: Path, steps: int) -> list[dict] | None:
    """A run's metrics when it reached its last step, else None."""
    from prmkit.rl.records import finished_metrics

    return finished_metrics(out, steps)


def window_mean(recs: list[dict], key: str = "prm/rank_acc_before", lo: int = RANK_WINDOW[0],
                hi: int = RANK_WINDOW[1]) -> float | None:
    from prmkit.rl.records import window_mean as mean_over

    return mean_over(recs, key, lo, hi)


def dev_selection(work: Path) -> tuple[dict | None, list[dict]]:
    """(chosen PRM settings or None while a dev run is unfinished, the table)."""
    table, done = [], True
    for g in DEV_GRID:
        recs = read_records(work / "dev" / dev_name(g) / "seed0", DEV_STEPS)
        done &= recs is not None
        table.append({**g, "rank_acc_before_steps_20_40": window_mean(recs, lo=DEV_WINDOW[0], hi=DEV_WINDOW[1])
                      if recs else None,
                      "finished": recs is not None})
    if not done:
        return None, table
    best = max(range(len(table)), key=lambda i: (table[i]["rank_acc_before_steps_20_40"], -i))
    table[best]["chosen"] = True
    return {k: DEV_GRID[best][k] for k in DEV_GRID[best]}, table


def rloo_filter_reused(work: Path) -> bool | None:
    """True when rloo_filter's seed-0 curve equals prime_faithful_p0's (then seeds 1-2 reuse the latter)."""
    a, b = read_records(work / "rloo_filter" / "seed0", STEPS), read_records(work / "prime_faithful_p0" / "seed0", STEPS)
    if a is None or b is None:
        return None
    ev = lambda recs: [(r["step"], r["eval/accuracy"]) for r in recs if "eval/accuracy" in r]  # noqa: E731
    return ev(a) == ev(b)


def claim(work: Path, job: tuple) -> bool:
    path = work / "claims" / f"{job[0]}_{job[1]}_seed{job[2]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def worker(work: Path) -> None:
    """Take the next unclaimed runnable job, run (or resume) it, repeat; wait while only dev-gated jobs remain."""
    from prmkit.rl.trainer import RLRun

    while True:
        chosen, _ = dev_selection(work)
        reused = rloo_filter_reused(work)
        pending = []
        for job in jobs():
            if job[1] == "rloo_filter" and job[2] != 0 and reused is not False:
                if reused is None:
                    pending.append(job)
                continue
            steps = DEV_STEPS if job[0] == "dev" else STEPS
            out = (work / "dev" / job[1] if job[0] == "dev" else work / job[1]) / f"seed{job[2]}"
            if read_records(out, steps) is not None or (work / "claims" / f"{job[0]}_{job[1]}_seed{job[2]}").exists():
                continue
            if job[1] in NEEDS_DEV and chosen is None:
                pending.append(job)
                continue
            if claim(work, job):
                print(f"[{time.strftime('%H:%M:%S')}] pid {os.getpid()} runs {job}", flush=True)
                RLRun(run_config(work, job, chosen)).train()
                break
        else:
            if not pending:
                return
            time.sleep(30)


def launch(work: Path, n: int) -> None:
    import shutil

    shutil.rmtree(work / "claims", ignore_errors=True)  # one launcher: stale claims are from a cut-off run
    work.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(n):
        log = open(work / f"worker{i}.log", "a")
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", "--work", str(work)],  # run me with nice
                                      stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"}))
        time.sleep(2)
    for p in procs:
        p.wait()


# ---- summary: reads run files only (no model loads), so it can be rerun at any time on whatever finished


def _evals(recs: list[dict]) -> list[tuple[int, float]]:
    from prmkit.rl.records import eval_curve

    return eval_curve(recs)


def _partial(out: Path) -> list[dict]:
    from prmkit.rl.records import read_metrics

    return read_metrics(out)


def primary(recs: list[dict]) -> float:
    """Mean of the last four evaluations of a finished run."""
    from prmkit.rl.records import last_evals_mean

    return last_evals_mean(recs, 4)


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
            same = arm == "rloo_filter" and d["seeds"][SEEDS[-1]]["source"].startswith("prime_faithful_p0")
            axes[0].plot(xs, ys, marker="o", ms=3, ls="--" if same else "-", zorder=3 if same else 2,
                         label=f"{arm} ({len(d['finished_seeds'])} seeds{'; = prime_faithful_p0' if same else ''})")
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


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench_prime"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "prime.json"))
    ap.add_argument("--workers", type=int, default=3, help="parallel run processes (each one torch thread)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--summarize", action="store_true", help="only write the JSON and plot from finished runs")
    args = ap.parse_args()
    if args.worker:
        worker(Path(args.work))
        sys.exit(0)
    if not args.summarize:
        launch(Path(args.work), args.workers)
    summarize(Path(args.work), Path(args.out))
