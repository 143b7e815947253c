"""Agents on hopgym: the shipped agent policy, turn-level credit in RL, and learned turn reward models.

    .venv/bin/python bench/agents.py                # every part (each resumes from its run directories)
    .venv/bin/python bench/agents.py --part rl      # one part; parts merge their keys into one JSON

Rules, written down before any run (nothing below is chosen on the test split):

* Policy: hopgym's shipped agent policy (`prmkit/agents/hopgym/policy`, `prmkit agent train-policy` defaults).
* stats: `prmkit agent stats` on 500 `test` problems, one episode each (T = 1, seed 0).
* rl budget, the same for every method: 12 steps x 6 problems x 6 episodes, PPO-clip 0.2, minibatch 32,
  held-out success on 100 `test` problems (one episode each, T = 1, fixed seeds) every 4 steps, seeds 0, 1, 2.
  Methods benchmarked (2-core CPU budget): grpo (the baseline), igpo, istar, spa, gigpo, attributed (the
  gym's exact `useful` as the judge), pure (the gym checker as the frozen turn RM). AMENDMENT (before their
  runs; nothing else changes, the lr stays the one chosen on dev): rloo, hybrid (the gym checker as the turn
  RM), spear, oni, loo_turn and per_turn_index at the same budget and seeds, every knob the library default.
  AMENDMENT 2 (session 10, before their runs; nothing else changes): calm (the gym's exact subgoal verdicts
  as the judge, c = 0.1) and spear_replay (spear with SPEAR's self-imitation replay on, R = 6 replayed
  episodes per step, i.e. one group of k = 6; capacity and window the library defaults). reseek is not
  run: it reads the agent's own judgements of each turn, which hopgym's actions do not carry, and it
  refuses such an environment (InputError).
* rl learning rate: outcome GRPO on the `dev` split (100 problems) with lr in {3e-5, 1e-4, 3e-4}, seed 0,
  8 steps; the lr with the highest dev success at step 8 wins (ties: the smaller); every method uses it.
  (Budget cut twice before any run, to fit the 2-core machine shared with other jobs: 20 x 8 x 8 -> 16 x 8 x 8
  -> 12 x 6 x 6; it is small, so a method "reaching GRPO's final success" at this budget is weak evidence.)
  Every method-specific knob is the library default (the paper's), never tuned.
* steps_to_grpo_final[m]: the first evaluation step at which method m's seed-mean held-out success is at
  least outcome GRPO's seed-mean final success (null when never); GRPO's own is the first step at which its
  curve reaches its final value. Target: some turn-level method needs <= 0.6 x GRPO's steps.
* Turn reward models: episodes of the shipped policy, turns as steps, exact gold turn labels (1 before the
  first wrong turn, 0 at it): 300 `train` problems x 4 episodes for training, 100 `dev` x 4 for the
  threshold, 200 `test` x 8 for the numbers. PRM: `train prm` on the policy's backbone (no likelihood
  feature); ORM: `train orm`, same data; both with the trainer defaults. (Cut before any run to 200 `train`
  problems x 4 and 150 `test` x 8.) First-wrong-turn F1 at the
  dev-fitted threshold; best-of-8 rank@1 (PRM by its min over turns, ORM by its last-turn score).
Writes bench/results/agents.json (parts update their own keys) and bench/results/agents.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")

OUT = ROOT / "bench" / "results" / "agents.json"
RUNS = ROOT / "runs" / "bench-agents"
BUDGET = dict(steps=12, prompts_per_step=6, k=6, minibatch=32, eval_problems=100, eval_every=4, threads=1)
LRS = (3e-5, 1e-4, 3e-4)
SEEDS = (0, 1, 2)
RL_ARMS = ("grpo", "igpo", "istar", "spa", "gigpo", "attributed", "pure", "rloo", "hybrid", "spear", "oni", "loo_turn",
           "per_turn_index", "calm", "spear_replay")
ARM_CONFIG = {"spear_replay": {"method": "spear", "replay": 6}}   # arms that are a method with other knobs
TURN_REWARD_ARMS = ("igpo", "istar", "spa", "pure")


def _merge(keys: dict) -> None:
    from prmkit.schema import atomic_write_text, dumps_strict_json

    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data.update(keys)
    atomic_write_text(OUT, dumps_strict_json(data) + "\n")


def _one_run(kw: dict) -> list[dict]:
    from prmkit.agents.rl import AgentRLConfig, AgentRLRun

    return AgentRLRun(AgentRLConfig(**kw)).train() if not _done(kw) else _records(kw["out"])


def _done(kw: dict) -> bool:
    path = Path(kw["out"]) / "metrics.jsonl"
    return path.exists() and any(json.loads(line).get("step") == kw["steps"] and "eval" in json.loads(line)
                                 for line in path.read_text().splitlines())


def _records(out: str) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def _pool(configs: list[dict], workers: int) -> list[list[dict]]:
    with ProcessPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(_one_run, configs))


def part_stats() -> None:
    from prmkit.agents.stats import AgentStatsConfig, run

    stats = run(AgentStatsConfig(out=str(RUNS / "stats"), split="test", num_problems=500))
    _merge({"agent_success_start": stats["success"], "agent_stats": {k: v for k, v in stats.items() if k != "config"}})


def choose_lr(workers: int) -> float:
    configs = [dict(out=str(RUNS / f"dev-lr{lr:g}"), method="grpo", lr=lr, seed=0,
                    **{**BUDGET, "steps": 8, "eval_every": 8}) for lr in LRS]
    for c in configs:  # the selection reads dev problems only
        c["eval_problems_file"] = str(_dev_file())
    results = _pool(configs, workers)
    table = {f"{lr:g}": next(r["eval"]["success"] for r in reversed(res) if "eval" in r) for lr, res in zip(LRS, results)}
    best = max(LRS, key=lambda lr: (table[f"{lr:g}"], -lr))
    _merge({"lr_selection_on_dev": {"success_at_step_8": table, "chosen_lr": best}})
    return best


def _dev_file() -> Path:
    from prmkit.agents.hopgym import make_split
    from prmkit.schema import write_records

    path = RUNS / "dev_problems.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_records(path, make_split("dev", BUDGET["eval_problems"]))
    return path


def rl_configs(lr: float) -> list[dict]:
    """AgentRLConfig keywords of every (arm, seed) run, arm-major: the budget, then the arm's own knobs."""
    return [{**dict(out=str(RUNS / f"{m}-s{s}"), method=m, lr=lr, seed=s, **BUDGET), **ARM_CONFIG.get(m, {})}
            for m in RL_ARMS for s in SEEDS]


def part_rl(workers: int) -> None:
    from prmkit.agents.compare import plot_success, summarize_agent_runs

    lr = choose_lr(workers)
    results = _pool(rl_configs(lr), workers)
    by_method = {m: results[i * len(SEEDS):(i + 1) * len(SEEDS)] for i, m in enumerate(RL_ARMS)}
    summary = summarize_agent_runs(by_method)
    ratios = summary["steps_ratio_to_grpo"]
    summary["turn_reward_spearman_vs_info_gain"] = {m: summary["turn_reward_spearman_info_gain"][m]
                                                    for m in TURN_REWARD_ARMS}
    summary["target_met"] = any(r is not None and r <= 0.6 for m, r in ratios.items() if m not in ("grpo", "rloo"))
    _merge({"budget": {**BUDGET, "lr": lr, "seeds": list(SEEDS)}, **summary})
    plot_success(summary["curves"], OUT.with_name("agents.png"), "hopgym: turn-level credit vs outcome GRPO")


def part_prm() -> None:
    from prmkit.agents.rl import SHIPPED_AGENT
    from prmkit.agents.turn_rm import TurnRMPlan, evaluate_turn_rms

    res = evaluate_turn_rms(str(SHIPPED_AGENT), RUNS / "turn-rm", TurnRMPlan(train=(200, 4), dev=(100, 4), test=(150, 8)))
    _merge({"turn_prm_first_error_f1": res.pop("turn_prm_first_error_f1"), "bon_rank1": res.pop("bon_rank1"),
            "turn_rms": res})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("stats", "rl", "prm", "all"), default="all")
    ap.add_argument("--workers", type=int, default=2, help="RL runs in parallel (one CPU thread each)")
    args = ap.parse_args()
    if args.part in ("stats", "all"):
        part_stats()
    if args.part in ("prm", "all"):
        part_prm()
    if args.part in ("rl", "all"):
        part_rl(args.workers)


if __name__ == "__main__":
    main()
