"""`prmkit gym stats`: how often the policy is right, where its first errors fall, and how often it
reaches the right answer through a wrong step — the numbers that make the gym a useful lab."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prmkit.config import save_config
from prmkit.data import SHIPPED_POLICY_DIR
from prmkit.policy.base import SamplingParams
from prmkit.policy.sample import make_sampler, sample_traces
from prmkit.schema import Trace, atomic_write_text, write_records


@dataclass
class GymStatsConfig:
    """Sample the policy on a gym split and report accuracy and first-error statistics."""

    split: str = "test"
    """gym split: test (default difficulty) or long (6-10 operations)"""
    num_problems: int = 500
    """problems sampled (one solution each)"""
    model: str = ""
    """policy dir or hub id (empty: the shipped gym policy)"""
    temperature: float = 1.0
    """sampling temperature"""
    seed: int = 0
    """sampling seed"""
    json: bool = False
    """print one JSON object instead of the table"""
    out: str = ""
    """run directory for traces.jsonl and stats.json (empty: none)"""


def compute_stats(traces: list[Trace]) -> dict:
    """Accuracy, first-error histogram (step position -> count), right-answer-wrong-step count."""
    hist = Counter(t.first_error for t in traces if t.first_error is not None and t.first_error >= 0)
    errors = sum(hist.values())
    return {
        "num_traces": len(traces),
        "sampled_accuracy": sum(1 for t in traces if t.outcome == 1.0) / max(1, len(traces)),
        "first_error_hist": {str(k): hist[k] for k in sorted(hist)},
        "max_first_error_share": max(hist.values()) / errors if errors else 0.0,
        "right_answer_wrong_step": sum(1 for t in traces if t.outcome == 1.0 and t.first_error is not None and t.first_error >= 0),
        "all_steps_correct": sum(1 for t in traces if t.first_error == -1),
        "well_formed": sum(1 for t in traces if t.meta.get("well_formed")) / max(1, len(traces)),
    }


def run(cfg: GymStatsConfig) -> dict:
    from prmkit.gym.task import make_split

    problems = make_split(cfg.split, cfg.num_problems)
    sampler = make_sampler(cfg.model or str(SHIPPED_POLICY_DIR))
    params = SamplingParams(n=1, max_new_tokens=160, temperature=cfg.temperature, seed=cfg.seed)
    traces = sample_traces(sampler, problems, params, desc=f"gym stats ({cfg.split})")
    stats = {"split": cfg.split, **compute_stats(traces)}
    if cfg.out:
        save_config(cfg.out, cfg)
        write_records(Path(cfg.out) / "traces.jsonl", traces)
        atomic_write_text(Path(cfg.out) / "stats.json", json.dumps(stats, indent=2) + "\n")
    if cfg.json:
        print(json.dumps(stats))
    else:
        _print_table(stats)
    return stats


def _print_table(stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"gym stats — split {stats['split']}, {stats['num_traces']} traces")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("sampled accuracy", f"{stats['sampled_accuracy']:.3f}")
    t.add_row("well-formed", f"{stats['well_formed']:.3f}")
    t.add_row("all steps correct", str(stats["all_steps_correct"]))
    t.add_row("right answer, wrong step", str(stats["right_answer_wrong_step"]))
    t.add_row("largest first-error share", f"{stats['max_first_error_share']:.3f}")
    h = Table(title="first-error position (0-based step index)")
    h.add_column("step")
    h.add_column("count", justify="right")
    for k, v in stats["first_error_hist"].items():
        h.add_row(k, str(v))
    Console().print(t, h)
