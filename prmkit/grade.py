"""`prmkit grade`: grade traces against their problems' reference answers with the task's grader
(`prmkit.tasks`; a task with step gold, the gym, also sets each trace's first error)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prmkit.errors import InputError
from prmkit.gym.task import check_prompts
from prmkit.schema import read_problems, read_traces, write_records
from prmkit.steps import check_split_mode, join_steps, split_solution
from prmkit.tasks import get_grader, gold_first_error, has_own_steps


@dataclass
class GradeConfig:
    """Grade traces (outcome; gym traces also get their gold first-error index)."""

    traces: str = ""
    """traces JSONL in prmkit's schema"""
    problems: str = ""
    """problems JSONL holding each trace's reference answer and task"""
    out: str = ""
    """graded traces JSONL (empty: print the accuracy only)"""
    task: str = ""
    """grader to use for every trace (empty: each problem's own task)"""
    step_split: str = ""
    """re-split each non-gym trace's text (its steps joined by newlines) by a mode: double_newline,
    newline, regex:<pattern>, step_markers; empty: keep the traces' steps"""


def run(cfg: GradeConfig) -> float:
    if not cfg.traces or not cfg.problems:
        raise InputError("both --traces and --problems are required", field="traces")
    if cfg.step_split:
        check_split_mode(cfg.step_split)
    problems = {p.id: p for p in read_problems(cfg.problems)}
    check_prompts(problems.values(), cfg.problems, cfg.task)
    traces = read_traces(cfg.traces)
    for i, t in enumerate(traces):
        p = problems.get(t.problem_id)
        if p is None:
            raise InputError(f"problem id {t.problem_id!r} is not in {cfg.problems}", file=cfg.traces,
                             line=i + 1, field="problem_id")
        task = cfg.task or p.task
        grader = get_grader(task)
        if cfg.step_split and not has_own_steps(task):
            t.steps = resplit(t, cfg.step_split, cfg.traces, i + 1)
        if t.final_answer is None:
            t.final_answer = grader.extract_answer(join_steps(t.steps))
        t.outcome = float(grader.is_correct(t.final_answer, p.answer))
        first_error = gold_first_error(p, t.steps, task)
        if first_error is not None:
            t.first_error = first_error
    acc = sum(t.outcome or 0 for t in traces) / max(1, len(traces))
    if cfg.out:
        write_records(Path(cfg.out), traces)
    print(f"graded {len(traces)} traces: accuracy {acc:.4f}")
    return acc


def resplit(trace, mode: str, file: str, line: int) -> list[str]:
    """The trace's steps joined by newlines and split again by `mode`; refuses a labelled trace
    (its labels are per step and would no longer line up)."""
    if trace.labels is not None:
        raise InputError("the trace has step labels; re-splitting its steps would misalign them (grade it without "
                         "--step-split)", file=file, line=line, field="labels")
    text = join_steps(trace.steps)
    return split_solution(text, mode) or [text]
