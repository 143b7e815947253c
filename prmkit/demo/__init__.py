"""`prmkit demo`: the main job on the gym, stage by stage, ending in a results table and a report.

Stages (each writes into its own folder of the run directory and is skipped when its output is
already there, so an interrupted demo resumes):
  1. gym stats on the default test split and on the long split (shipped policy, temperature 1);
  2. sample 4 solutions per test problem and grade them (pass@1 / pass@4 / majority vote);
  3. GSM8K: convert the real test split to traces and run the calculator-annotation checker;
  4. the later stages in `STAGES` (labeling, reward models, search, RL): each is a function
     `demo_stage(out_dir, seed) -> dict` of its package returning flat headline numbers and, under
     "plots", the PNG files it drew (embedded in the report).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path


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


# key -> (title, "module:function"); run in this order after the foundation stages
STAGES: dict[str, tuple[str, str]] = {
    "label": ("Step labels without humans (mc, omega, verify) against gold", "prmkit.label.demo:demo_stage"),
    "reward_models": ("Reward models: shipped PRM (ProcessBench F1, Best-of-N), implicit PRM",
                      "prmkit.evaluate.demo:demo_stage"),
    "serve": ("Reward server and TRL adapter", "prmkit.serve.demo:demo_stage"),
    "search": ("PRM-guided search: accuracy vs policy tokens", "prmkit.search.sweep:demo_stage"),
    "rl": ("RL: outcome GRPO and PRIME (held-out accuracy)", "prmkit.rl.demo:demo_stage"),
}


def _selected_stages(spec: str) -> list[str]:
    if spec == "all":
        return list(STAGES)
    if spec == "none":
        return []
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in keys if k not in STAGES]
    if unknown:
        from prmkit.errors import InputError

        raise InputError(f"unknown demo stage(s) {unknown}; expected 'all', 'none' or names from {list(STAGES)}",
                         field="stages")
    return keys


def _stage(out: Path, name: str, fn, timings: dict) -> dict:
    path = out / name / "result.json"
    if path.exists():
        return json.loads(path.read_text())
    t = time.perf_counter()
    result = fn(out / name)
    timings[name] = round(time.perf_counter() - t, 1)
    from prmkit.schema import atomic_write_text

    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return result


def _stats_stage(split: str, cfg: DemoConfig):
    def fn(d: Path) -> dict:
        from prmkit.gym.stats import GymStatsConfig, run

        return run(GymStatsConfig(split=split, num_problems=cfg.num_problems, seed=cfg.seed, out=str(d)))
    return fn


def _sample_stage(cfg: DemoConfig):
    def fn(d: Path) -> dict:
        from prmkit.policy.sample import SampleConfig, run
        from prmkit.schema import read_traces

        run(SampleConfig(out=str(d), split="test", num_problems=cfg.num_problems // 2, n=cfg.samples,
                         seed=cfg.seed + 1, max_new_tokens=160))
        traces = read_traces(d / "traces.jsonl")
        by_problem: dict[str, list] = {}
        for t in traces:
            by_problem.setdefault(t.problem_id, []).append(t)
        pass1 = sum(t.outcome for t in traces) / len(traces)
        passk = sum(any(t.outcome for t in g) for g in by_problem.values()) / len(by_problem)
        maj = sum(_majority_correct(g) for g in by_problem.values()) / len(by_problem)
        return {"problems": len(by_problem), "samples": cfg.samples, "pass@1": pass1,
                f"pass@{cfg.samples}": passk, f"majority@{cfg.samples}": maj}
    return fn


def _majority_correct(group) -> bool:
    votes = Counter(t.final_answer for t in group if t.final_answer is not None)
    if not votes:
        return False
    answer = votes.most_common(1)[0][0]
    return any(t.outcome == 1.0 for t in group if t.final_answer == answer)


def _gsm8k_stage(path: Path):
    def fn(d: Path) -> dict:
        from prmkit.formats import convert
        from prmkit.schema import read_traces
        from prmkit.tasks import get_grader
        from prmkit.tasks.calculator import scan_file

        n = convert(str(path), "gsm8k", str(d / "traces.jsonl"), "prmkit")
        traces = read_traces(d / "traces.jsonl")
        g = get_grader("gsm8k")
        scan = scan_file(path)
        return {"records": n, "steps": sum(t.num_steps for t in traces),
                "self_graded_correct": sum(g.is_correct(t.final_answer, t.final_answer) for t in traces),
                "calculator_steps_covered": scan["covered"], "calculator_steps_flagged": scan["flagged"]}
    return fn


def run(cfg: DemoConfig) -> dict:
    from prmkit.config import save_config
    from prmkit.data import gsm8k_test_path
    from prmkit.report import write_demo_report

    out = Path(cfg.out)
    save_config(out, cfg)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    results = {
        "gym_test": _stage(out, "gym_stats_test", _stats_stage("test", cfg), timings),
        "gym_long": _stage(out, "gym_stats_long", _stats_stage("long", cfg), timings),
        "sampling": _stage(out, "sample", _sample_stage(cfg), timings),
    }
    gsm = Path(cfg.gsm8k) if cfg.gsm8k else gsm8k_test_path()
    results["gsm8k"] = _stage(out, "gsm8k", _gsm8k_stage(gsm), timings)
    for key, (_title, target) in STAGES.items():
        if key not in _selected_stages(cfg.stages):
            continue
        module_name, fn_name = target.split(":")

        def stage_fn(d: Path, module_name=module_name, fn_name=fn_name) -> dict:
            import importlib

            d.mkdir(parents=True, exist_ok=True)
            return getattr(importlib.import_module(module_name), fn_name)(d, cfg.seed)
        results[key] = _stage(out, key, stage_fn, timings)
    results["timings_s"] = {**timings, "total": round(time.perf_counter() - t0, 1)}
    results["config"] = asdict(cfg)
    from prmkit.schema import atomic_write_text

    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    report = write_demo_report(out, results)
    _print_table(results)
    print(f"report: {report}")
    return results


def _print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="prmkit demo — gym results")
    t.add_column("stage")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for split in ("gym_test", "gym_long"):
        s = results[split]
        t.add_row(split, "sampled accuracy (T=1)", f"{s['sampled_accuracy']:.3f}")
        t.add_row(split, "well-formed", f"{s['well_formed']:.3f}")
        t.add_row(split, "right answer, wrong step", str(s["right_answer_wrong_step"]))
        t.add_row(split, "largest first-error share", f"{s['max_first_error_share']:.3f}")
    for k, v in results["sampling"].items():
        if isinstance(v, float):
            t.add_row("sample", k, f"{v:.3f}")
    for k, v in results.get("gsm8k", {}).items():
        t.add_row("gsm8k", k, str(v))
    for key, (title, _target) in STAGES.items():
        for k, v in results.get(key, {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                t.add_row(key, k, f"{v:.3f}" if isinstance(v, float) else str(v))
    t.add_row("time", "total seconds", str(results["timings_s"]["total"]))
    Console().print(t)
