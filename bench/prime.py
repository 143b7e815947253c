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
    from prmkit.rl.loop import RLConfig

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
    path = out / "metrics.jsonl"
    if not path.exists():
        return None
    recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return recs if recs and recs[-1].get("step") == steps else None


def window_mean(recs: list[dict], key: str = "prm/rank_acc_before", lo: int = RANK_WINDOW[0],
                hi: int = RANK_WINDOW[1]) -> float | None:
    vals = [r[key] for r in recs if lo <= r["step"] <= hi and r.get(key) is not None]
    return statistics.fmean(vals) if vals else None


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
    from prmkit.rl.loop import RLRun

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


if __name__ == "__main__":
    from bench.prime_summary import summarize

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
