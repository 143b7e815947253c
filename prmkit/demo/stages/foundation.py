"""The foundation stages of `prmkit demo`: gym statistics, sampling with pass@k and majority vote,
and the GSM8K converter with the calculator-annotation checker. Each maker returns `fn(dir) -> dict`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from prmkit.formats import convert
from prmkit.gym.stats import GymStatsConfig
from prmkit.gym.stats import run as gym_stats
from prmkit.sample import SampleConfig
from prmkit.sample import run as sample
from prmkit.schema import read_traces
from prmkit.tasks import get_grader
from prmkit.tasks.calculator import scan_file


def stats_stage(split: str, num_problems: int, seed: int):
    """`prmkit gym stats` on `split`."""
    def fn(d: Path) -> dict:
        return gym_stats(GymStatsConfig(split=split, num_problems=num_problems, seed=seed, out=str(d)))
    return fn


def sample_stage(num_problems: int, samples: int, seed: int):
    """`samples` solutions to each of `num_problems // 2` test problems; pass@1, pass@k and majority@k."""
    def fn(d: Path) -> dict:
        sample(SampleConfig(out=str(d), split="test", num_problems=num_problems // 2, n=samples, seed=seed + 1,
                            max_new_tokens=160))
        traces = read_traces(d / "traces.jsonl")
        by_problem: dict[str, list] = {}
        for t in traces:
            by_problem.setdefault(t.problem_id, []).append(t)
        pass1 = sum(t.outcome for t in traces) / len(traces)
        passk = sum(any(t.outcome for t in g) for g in by_problem.values()) / len(by_problem)
        maj = sum(majority_correct(g) for g in by_problem.values()) / len(by_problem)
        return {"problems": len(by_problem), "samples": samples, "pass@1": pass1,
                f"pass@{samples}": passk, f"majority@{samples}": maj}
    return fn


def majority_correct(group) -> bool:
    """Whether the most frequent final answer of `group` (first counted wins a tie) is a correct one."""
    votes = Counter(t.final_answer for t in group if t.final_answer is not None)
    if not votes:
        return False
    answer = votes.most_common(1)[0][0]
    return any(t.outcome == 1.0 for t in group if t.final_answer == answer)


def gsm8k_stage(path: Path):
    """GSM8K records at `path` converted to traces, self-graded, and scanned by the calculator checker."""
    def fn(d: Path) -> dict:
        n = convert(str(path), "gsm8k", str(d / "traces.jsonl"), "prmkit")
        traces = read_traces(d / "traces.jsonl")
        g = get_grader("gsm8k")
        scan = scan_file(path)
        return {"records": n, "steps": sum(t.num_steps for t in traces),
                "self_graded_correct": sum(g.is_correct(t.final_answer, t.final_answer) for t in traces),
                "calculator_steps_covered": scan["covered"], "calculator_steps_flagged": scan["flagged"]}
    return fn
