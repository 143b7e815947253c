"""Problems (`Problem` records for `sample` / `search` / `rl`) from the field's datasets.

    problems_from_records("gsm8k", records)   # -> [Problem(id="gsm8k-0", prompt=..., answer="18", task="gsm8k")]

# formats:
#   gsm8k (openai/grade-school-math): {"question", "answer"}; the answer's last "#### <n>" line
#     holds the final answer. Ids are `gsm8k-<i>`, i the 0-based record position, as the GSM8K
#     trace converter names them, so problems and converted traces share ids.
#   math (hendrycks/math): {"problem", "level", "type", "solution"}; the final answer is the content
#     of the solution's last `\boxed{...}` (nested braces kept). A record's own `answer` field
#     (MATH-500 and PRM800K's math_splits have one) is used as given. Ids: `unique_id` when present
#     (MATH-500), else `math-<i>`.
#   processbench (Qwen/ProcessBench): {"id", "generator", "problem", "steps", "final_answer_correct",
#     "label"}; it has no reference answer, so a problem's answer is the final answer of one of its
#     samples with `final_answer_correct: true` (the last step's `\boxed{}`, else the task grader's
#     reading); a problem none of whose samples is correct has no known answer and is skipped (and
#     counted). Task from the id's split prefix: "gsm8k-..." -> gsm8k, every other split -> math.
#   prm800k (openai/prm800k): `question.problem` and `question.ground_truth_answer`, task math.
#   columns: any JSONL / JSON array / HF dataset export with named columns: `problem_field`,
#     `answer_field`, an optional `id_field` (else `<task>-<i>`) and an explicit `task`.

Every source writes `id`, `prompt`, `answer` and `task`; the source's other fields go to `meta`.
Duplicate ids are an error naming both records.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from prmkit.errors import InputError
from prmkit.formats._fields import extra_fields, get_field, prompt_id
from prmkit.schema import Problem

FINAL = "####"


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, braces balanced, or None."""
    from prmkit.tasks.math import extract_boxed

    return extract_boxed(text)


def gsm8k_problem(record: dict[str, Any], index: int, line: int | None) -> Problem:
    question = get_field(record, "question", str, "a string", line=line)
    answer = get_field(record, "answer", str, "solution lines ending in a line '#### <answer>'", line=line)
    if FINAL not in answer:
        raise InputError(f"expected a final line '{FINAL} <answer>', found none", line=line, field="answer")
    final = answer.rsplit(FINAL, 1)[1].strip()
    if not final:
        raise InputError(f"expected an answer after the last '{FINAL}', got nothing", line=line, field="answer")
    return Problem(id=f"gsm8k-{index}", prompt=question, answer=final, task="gsm8k",
                   meta={"solution": answer, **extra_fields(record, ("question", "answer"))})


def math_problem(record: dict[str, Any], index: int, line: int | None) -> Problem:
    problem = get_field(record, "problem", str, "a string", line=line)
    if "answer" in record:
        answer = get_field(record, "answer", str, "a string", line=line)
    else:
        solution = get_field(record, "solution", str, "a solution ending in \\boxed{<answer>}", line=line)
        answer = last_boxed(solution)
        if answer is None:
            raise InputError("expected a \\boxed{<answer>} in the solution, found none", line=line,
                             field="solution")
    pid = record.get("unique_id")
    pid = pid if isinstance(pid, str) and pid else f"math-{index}"
    return Problem(id=pid, prompt=problem, answer=answer, task="math",
                   meta=extra_fields(record, ("problem", "answer", "unique_id")))


def prm800k_problem(record: dict[str, Any], index: int, line: int | None) -> Problem:
    question = get_field(record, "question", dict, "an object with 'problem'", line=line)
    problem = get_field(question, "problem", str, "a string", line=line, prefix="question.")
    answer = get_field(question, "ground_truth_answer", str, "a string", line=line, prefix="question.")
    return Problem(id=prompt_id("prm800k", problem), prompt=problem, answer=answer, task="math",
                   meta={k: v for k, v in question.items() if k in ("ground_truth_solution",)})


def processbench_task(sample_id: str) -> str:
    """ProcessBench's split from its id ("gsm8k-12" -> gsm8k); every other split is MATH-style."""
    return "gsm8k" if sample_id.startswith("gsm8k-") else "math"


def processbench_problems(records: Sequence[dict[str, Any]], lines: Sequence[int]) -> tuple[list[Problem], int]:
    """One problem per distinct problem text (id: its first sample's), answered by a correct sample;
    returns (problems, number of problems skipped for want of a correct sample)."""
    from prmkit.formats import processbench
    from prmkit.tasks import get_grader

    first_id: dict[str, str] = {}  # problem text -> id of its first sample (dict order = file order)
    answered: dict[str, Problem] = {}
    for record, line in zip(records, lines):
        trace = processbench.record_to_trace(record, line=line)  # checks every field
        prompt = trace.prompt
        pid = first_id.setdefault(prompt, trace.problem_id)
        task = processbench_task(pid)
        if prompt in answered or trace.outcome != 1.0:
            continue
        answer = last_boxed(trace.steps[-1]) or get_grader(task).extract_answer(trace.steps[-1])
        if answer:
            answered[prompt] = Problem(id=pid, prompt=prompt, answer=answer, task=task,
                                       meta={"source": "processbench", "answer_from": trace.problem_id})
    problems = [answered[prompt] for prompt in first_id if prompt in answered]
    return problems, len(first_id) - len(problems)


def columns_problem(record: dict[str, Any], index: int, line: int | None, *, problem_field: str,
                    answer_field: str, id_field: str, task: str) -> Problem:
    prompt = get_field(record, problem_field, str, "the problem text (a string)", line=line)
    answer = get_field(record, answer_field, (str, int, float), "the reference answer", line=line)
    if id_field:
        pid = get_field(record, id_field, (str, int), "a problem id", line=line)
    else:
        pid = f"{task}-{index}"
    return Problem(id=str(pid), prompt=prompt, answer=str(answer), task=task,
                   meta=extra_fields(record, (problem_field, answer_field, id_field)))


PER_RECORD: dict[str, Callable[[dict[str, Any], int, int | None], Problem]] = {
    "gsm8k": gsm8k_problem, "math": math_problem, "prm800k": prm800k_problem,
}
SOURCES = ("gsm8k", "math", "processbench", "prm800k", "columns")


def problems_from_records(source: str, records: Sequence[dict[str, Any]], lines: Sequence[int] | None = None, *,
                          problem_field: str = "", answer_field: str = "", id_field: str = "",
                          task: str = "") -> tuple[list[Problem], int]:
    """(problems, skipped) from `source` records (see the module docstring); `skipped` counts
    ProcessBench problems with no correct sample (always 0 for the other sources)."""
    lines = list(lines) if lines is not None else list(range(1, len(records) + 1))
    if source not in SOURCES:
        raise InputError(f"unknown problem source {source!r}; expected one of {list(SOURCES)}", field="source")
    skipped = 0
    if source == "processbench":
        problems, skipped = processbench_problems(records, lines)
    elif source == "columns":
        _check_columns(problem_field, answer_field, task)
        problems = [columns_problem(r, i, line, problem_field=problem_field, answer_field=answer_field,
                                    id_field=id_field, task=task) for i, (r, line) in enumerate(zip(records, lines))]
    else:
        problems = [PER_RECORD[source](r, i, line) for i, (r, line) in enumerate(zip(records, lines))]
    if source != "processbench":
        _check_unique(problems, lines, dedupe=source == "prm800k")
        if source == "prm800k":
            problems = list({p.id: p for p in problems}.values())
    return problems, skipped


def _check_columns(problem_field: str, answer_field: str, task: str) -> None:
    from prmkit.tasks import GRADERS

    for name, value in (("problem_field", problem_field), ("answer_field", answer_field), ("task", task)):
        if not value:
            raise InputError(f"--source columns needs --{name.replace('_', '-')} (the column that holds it"
                             f"{'; a grader: ' + ', '.join(sorted(GRADERS)) if name == 'task' else ''})", field=name)
    if task not in GRADERS:
        raise InputError(f"unknown task {task!r}; expected one of {sorted(GRADERS)}", field="task")


def _check_unique(problems: Sequence[Problem], lines: Sequence[int], dedupe: bool) -> None:
    """Duplicate ids are an error; with `dedupe` (PRM800K: many lines per problem) only when their
    answers differ."""
    seen: dict[str, tuple[Problem, int]] = {}
    for p, line in zip(problems, lines):
        if p.id in seen:
            first, first_line = seen[p.id]
            if not dedupe or first.answer != p.answer:
                raise InputError(f"duplicate problem id {p.id!r} (first at record {first_line}"
                                 f"{', with answer ' + repr(first.answer) if dedupe else ''})", line=line, field="id")
            continue
        seen[p.id] = (p, line)
