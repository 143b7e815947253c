"""Learned turn reward models on an environment with turn gold: sample episodes, train a turn PRM and an ORM
with the single-turn trainers on turn traces, and measure them against the gold.

Metrics: first-wrong-turn F1 at the threshold each model fitted on a dev split (ProcessBench's rule),
AUROC of turn scores against `useful`, Spearman of turn scores with the exact information gain,
best-of-N rank@1 of PRM and ORM (ToolComp, arXiv 2501.01290), and the PRM's mean score by turn index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prmkit.agents.monitors import spearman
from prmkit.agents.turns import bon_rank1, score_by_turn_index, turn_auroc


@dataclass
class TurnRMPlan:
    """Which episodes each split contributes (problems x episodes per problem)."""

    train: tuple[int, int] = (300, 4)
    dev: tuple[int, int] = (100, 4)
    test: tuple[int, int] = (200, 8)
    seed: int = 0


def _sample(policy: str, split: str, n: int, k: int, out: Path, seed: int) -> Path:
    from prmkit.agents.sample import AgentSampleConfig, run

    path = out / "turns.jsonl"
    if not path.exists():
        run(AgentSampleConfig(out=str(out), model=policy, split=split, num_problems=n, k=k, seed=seed))
    return path


def _train(kind: str, policy: str, data: Path, fit: Path, out: Path) -> Path:
    if (out / "prmkit_rm.json").exists():
        return out
    if kind == "prm":
        from prmkit.train.prm import TrainPRMConfig, run

        run(TrainPRMConfig(out=str(out), data=str(data), model=policy, fit_data=str(fit), loglik_feature=False))
    elif kind == "implicit":  # an implicit turn PRM from episode outcomes only (arXiv 2412.01981)
        from prmkit.train.implicit import TrainImplicitConfig, run

        run(TrainImplicitConfig(out=str(out), data=str(data), model=policy, fit_data=str(fit)))
    else:
        from prmkit.train.orm import TrainORMConfig, run

        run(TrainORMConfig(out=str(out), data=str(data), model=policy, fit_data=str(fit)))
    return out


def _info_gain_spearman(scores, traces) -> float | None:
    pairs = [(float(sc[k]), float(g["info_gain"])) for sc, t in zip(scores, traces)
             for k, g in enumerate(t.meta.get("turn_gold") or []) if g and "info_gain" in g and k < len(sc)]
    return spearman([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None


def evaluate_turn_rms(policy: str, work: Path, plan: TurnRMPlan = TurnRMPlan()) -> dict:
    """Sample, train, evaluate; every stage is skipped when its output already exists (resumable)."""
    paths = {split: _sample(policy, split, n, k, work / f"episodes-{split}", plan.seed)
             for split, (n, k) in (("train", plan.train), ("dev", plan.dev), ("test", plan.test))}
    out = train_and_evaluate(policy, paths, work)
    out["plan"] = {"train": list(plan.train), "dev": list(plan.dev), "test": list(plan.test)}
    return out


def train_and_evaluate(policy: str, paths: dict[str, Path], work: Path, kinds: tuple[str, ...] = ("prm", "orm")) -> dict:
    """Train turn reward models (`prm`, `orm`, `implicit`) on `paths["train"]` turn traces (threshold on
    `paths["dev"]`) and measure them on `paths["test"]`."""
    from prmkit.evaluate.processbench import evaluate_scores
    from prmkit.rewards import load_reward_model
    from prmkit.rewards.aggregate import aggregate
    from prmkit.rewards.base import score_traces
    from prmkit.schema import read_traces

    test = read_traces(paths["test"])
    out: dict = {"test_episodes": len(test), "test_success": sum(bool(t.outcome) for t in test) / len(test)}
    for kind in kinds:
        model_dir = _train(kind, policy, paths["train"], paths["dev"], work / kind)
        rm = load_reward_model(model_dir)
        scores = score_traces(rm, test)
        res = evaluate_scores(scores, [t.first_error for t in test], rm.threshold)
        how = "last" if kind == "orm" else "min"
        out[kind] = {"first_error_f1": res["f1"], "threshold": rm.threshold, "aggregation": how,
                     "auroc_vs_useful": turn_auroc(scores, test),
                     "spearman_vs_info_gain": _info_gain_spearman(scores, test),
                     "bon_rank1": bon_rank1(test, [aggregate(s, how) for s in scores]),
                     "score_by_turn_index": score_by_turn_index(scores, test)}
    out["turn_prm_first_error_f1"] = out["prm"]["first_error_f1"]
    out["bon_rank1"] = {"prm": out["prm"]["bon_rank1"], "orm": out["orm"]["bon_rank1"]}
    return out
