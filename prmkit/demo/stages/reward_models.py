"""The reward-model stage of `prmkit demo`: evaluate the shipped gym PRM on held-out traces (ProcessBench
protocol at its stored threshold), Best-of-N on the long split, and a short implicit-PRM training
from outcome labels only; plots for the report."""

from __future__ import annotations

import json
from pathlib import Path

from prmkit.evaluate.bon import group_by_problem, model_curves, outcome_curves, powers_of_two
from prmkit.evaluate.processbench import evaluate_scores, write_scored
from prmkit.evaluate.report import build_sections
from prmkit.rewards import default_gym_prm, load_reward_model
from prmkit.rewards.base import score_traces
from prmkit.schema import atomic_write_text, dumps_strict_json, write_records
from prmkit.gym.samples import gym_traces
from prmkit.train.implicit import TrainImplicitConfig
from prmkit.train.implicit import run as train_implicit


def demo_stage(out_dir: Path, seed: int) -> dict:
    """Run the stage into `out_dir`; return flat headline numbers and the PNGs drawn (under "plots")."""
    out_dir = Path(out_dir)
    ev = out_dir / "eval"
    rm = default_gym_prm()
    test = gym_traces("test", 60, 4, seed + 11, desc="sample test")
    scores = score_traces(rm, test)
    pb = evaluate_scores(scores, [t.first_error for t in test], rm.threshold, [t.outcome for t in test])
    (ev / "test_prm").mkdir(parents=True, exist_ok=True)
    atomic_write_text(ev / "test_prm" / "processbench.json", dumps_strict_json(pb))
    write_scored(ev / "test_prm" / "scored.jsonl", test, scores, rm)

    train = gym_traces("train", 40, 4, seed + 12, desc="sample train")
    write_records(out_dir / "implicit_train.jsonl", train)
    train_implicit(TrainImplicitConfig(out=str(out_dir / "implicit"), data=str(out_dir / "implicit_train.jsonl"),
                                       epochs=1.0, batch_size=16, fit_split="", seed=seed))
    imp = load_reward_model(out_dir / "implicit")

    n = 8
    long = gym_traces("long", 30, n, seed + 13, desc="sample long")
    groups, ns = group_by_problem(long, n), powers_of_two(n)
    bon = {"problems": len(groups), "n": n, "ns": ns, "resamples": 50, "seed": seed,
           **outcome_curves(long, groups, ns, 50, seed), "models": {}}
    for name, model in (("prm", rm), ("implicit", imp)):
        curves = model_curves(long, groups, score_traces(model, long), [model.aggregation], ns, 50, seed)
        bon["models"][name] = {"kind": model.kind, "aggregation": model.aggregation, "curves": curves,
                               f"bon{n}_accuracy": curves[model.aggregation]["argmax"][n]}
    (ev / "long_bon").mkdir(parents=True, exist_ok=True)
    atomic_write_text(ev / "long_bon" / "bon.json", json.dumps(bon, indent=2) + "\n")
    _, plots = build_sections(ev)
    return {"prm_test_f1": pb["f1"], "prm_test_acc_error": pb["acc_error"], "prm_test_acc_correct": pb["acc_correct"],
            "prm_step_auroc": pb["step_auroc"], "prm_step_ece": pb["step_ece"], "prm_threshold": rm.threshold,
            "test_traces": len(test), f"long_majority@{n}": bon["majority"][n],
            f"long_prm_bon@{n}": bon["models"]["prm"][f"bon{n}_accuracy"],
            f"long_implicit_bon@{n}": bon["models"]["implicit"][f"bon{n}_accuracy"],
            f"long_pass@{n}": bon["pass_at_k"][n], "long_problems": len(groups),
            "implicit_train_traces": len(train), "plots": [str(Path(p).resolve()) for p in plots]}
