"""`prmkit demo`: the main job on the gym, stage by stage, ending in a results table and a report.

Stages (each writes into its own folder of the run directory and is skipped when its output is
already there, so an interrupted demo resumes):
  1. gym stats on the default test split and on the long split (shipped policy, temperature 1);
  2. sample 4 solutions per test problem and grade them (pass@1 / pass@4 / majority vote);
  3. GSM8K: convert the real test split to traces and run the calculator-annotation checker;
  4. the later stages in `STAGES` (labeling, reward models, serve, search, RL), one module each in
     `prmkit/demo/stages/`: `demo_stage(out_dir, seed) -> dict` returning flat headline numbers
     and, under "plots", the PNG files it drew (embedded in the report).
The report (`demo/report.py`) is the one HTML page over all of them.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from prmkit.config import save_config
from prmkit.data import gsm8k_test_path
from prmkit.demo.report import print_table, write_demo_report
from prmkit.demo.stages import STAGES, selected_stages
from prmkit.demo.stages.foundation import gsm8k_stage, sample_stage, stats_stage
from prmkit.schema import atomic_write_text


@dataclass
class DemoConfig:
    """Run the gym pipeline and write a report (report.html, results.json)."""

    out: str = "runs/demo"
    """run directory"""
    num_problems: int = 500
    """problems per gym split"""
    samples: int = 4
    """samples per problem in the sampling stage"""
    seed: int = 0
    """sampling seed"""
    gsm8k: str = ""
    """GSM8K test JSONL for the converter/checker stage (empty: the GSM8K test split vendored in prmkit/data/gsm8k)"""
    stages: str = "all"
    """later stages to run after the foundation ones: 'all', 'none', or a comma list of label,
    reward_models, serve, search, rl"""


def _stage(out: Path, name: str, fn, timings: dict) -> dict:
    """`fn(out / name)`'s result, stored as `out/name/result.json`; read back instead when it is there."""
    path = out / name / "result.json"
    if path.exists():
        return json.loads(path.read_text())
    t = time.perf_counter()
    result = fn(out / name)
    timings[name] = round(time.perf_counter() - t, 1)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return result


def _later_stage(target: str, seed: int):
    """The stage function named by "module:function" (imported only when the stage runs)."""
    module_name, fn_name = target.split(":")

    def fn(d: Path) -> dict:
        d.mkdir(parents=True, exist_ok=True)
        return getattr(importlib.import_module(module_name), fn_name)(d, seed)
    return fn


def run(cfg: DemoConfig) -> dict:
    later = selected_stages(cfg.stages)  # (a bad --stages fails before any stage runs)
    out = Path(cfg.out)
    save_config(out, cfg)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    results = {
        "gym_test": _stage(out, "gym_stats_test", stats_stage("test", cfg.num_problems, cfg.seed), timings),
        "gym_long": _stage(out, "gym_stats_long", stats_stage("long", cfg.num_problems, cfg.seed), timings),
        "sampling": _stage(out, "sample", sample_stage(cfg.num_problems, cfg.samples, cfg.seed), timings),
    }
    gsm = Path(cfg.gsm8k) if cfg.gsm8k else gsm8k_test_path()
    results["gsm8k"] = _stage(out, "gsm8k", gsm8k_stage(gsm), timings)
    for key, (_title, target) in STAGES.items():
        if key not in later:
            continue
        results[key] = _stage(out, key, _later_stage(target, cfg.seed), timings)
    results["timings_s"] = {**timings, "total": round(time.perf_counter() - t0, 1)}
    results["config"] = asdict(cfg)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    report = write_demo_report(out, results)
    print_table(results)
    print(f"report: {report}")
    return results


__all__ = ["STAGES", "DemoConfig", "run"]
