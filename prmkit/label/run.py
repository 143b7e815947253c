"""`prmkit label`: label traces with one method, resumably, locally or over Ray actors.

Work is cut into chunks of `--chunk` consecutive traces.  Each chunk's records are appended to
`RUN_DIR/labels.jsonl` in input order as whole lines, flushed and fsynced; a rerun of the same
command checks the lines already there against the input (dropping a torn last line) and continues
after them.  Every trace's randomness is seeded by (seed, trace index), so the output does not
depend on chunking, backend, worker count or interruptions: it is byte-identical.
`RUN_DIR/cost.json` sums rollouts, policy tokens and wall time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prmkit.errors import InputError
from prmkit.gym.task import check_prompts
from prmkit.label.config import RUNTIME_FIELDS, LabelConfig, validate
from prmkit.label.methods import get_labeller
from prmkit.label.ray_backend import run_ray
from prmkit.label.scan import self_confidence_by_problem
from prmkit.label.worker import Worker
from prmkit.progress import progress
from prmkit.resolve import all_gym_prompts, check_model_name, default_policy, note, policy_path, read_problems
from prmkit.rundir import check_resume, record_config
from prmkit.schema import Problem, Trace, atomic_write_text, read_traces


# ---------------------------------------------------------------------------------------------
# resumable output


def _identity(t: Trace) -> tuple:
    return (t.problem_id, t.prompt, tuple(t.steps))


def resume_point(path: Path, traces: Sequence[Trace]) -> int:
    """Number of finished records already in `path`; a torn last line is cut off, and a record
    that does not match the input trace at its position is an `InputError`."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    good_end, n = 0, 0
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            break
        if n >= len(traces) or not isinstance(d, dict) or (
                d.get("problem_id"), d.get("prompt"), tuple(d.get("steps") or ())) != _identity(traces[n]):
            raise InputError(f"record does not match input trace {n}: this run directory was made from other "
                             "traces; use a new --out", file=str(path), line=n + 1)
        n += 1
        pos = good_end = nl + 1
    if good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return n


def _has_records(path: Path) -> bool:
    """Whether `path` holds at least one finished record (read only: a torn line is cut by `resume_point`)."""
    if not path.exists():
        return False
    with open(path, "rb") as fh:
        return b"\n" in fh.read(1 << 20) or b"\n" in fh.read()


def _chunks(start: int, traces: Sequence[Trace], size: int) -> list[list[tuple[int, Trace]]]:
    size = max(1, size)
    return [[(i, traces[i]) for i in range(c, min(c + size, len(traces)))] for c in range(start, len(traces), size)]


def _check_models(cfg: LabelConfig, traces) -> None:
    """The policy and judge names, checked before any model loads; the gym policy (and the rule judge,
    the gym's checker) is a default on gym traces only."""
    labeller = get_labeller(cfg.method)
    gym = all_gym_prompts(t.prompt for t in traces)
    if cfg.sampler == "hf" and labeller.uses_policy:
        policy_path(cfg.model, "model", gym)
    for name in ("prover", "judge_model"):
        value = getattr(cfg, name, "")
        if value:
            check_model_name(value, name, "a causal LM")
    if "judge" in labeller.needs:
        _check_judge(cfg, gym)


def _check_judge(cfg: LabelConfig, gym: bool) -> None:
    """The rule judge reads gym problems only; an LM judge with no model and no server is the gym policy
    on gym traces only (said so), and an error on other data."""
    if cfg.judge == "rule":
        if not gym:
            raise InputError("--judge rule is the gym's exact first-error checker and reads gym problems only; "
                             "these traces are not the gym's: pass --judge lm with --judge-model (a causal LM dir "
                             "or hub id) or --judge-base-url (an OpenAI-compatible server)", field="judge")
        note(f"judge: the gym's rule checker, wrong with probability {cfg.judge_error_rate} "
             "(--judge rule; the data is the gym's)")
    elif cfg.judge == "lm" and not cfg.judge_model and not cfg.judge_base_url:
        policy_path("", "judge_model", gym)


def summarize(path: Path, wall_s: float | None = None, **extra: Any) -> dict:
    """Cost and coverage of a labels file: totals and per-trace means."""
    traces = read_traces(path)
    rollouts = tokens = labelled = 0
    dropped: dict[str, int] = {}
    for t in traces:
        if t.labels is not None:
            labelled += 1
            rollouts += t.labels.rollouts
            tokens += t.labels.policy_tokens
        else:
            info = t.meta.get("label", {}) if isinstance(t.meta.get("label"), dict) else {}
            reason = str(info.get("dropped", "unlabelled"))
            dropped[reason] = dropped.get(reason, 0) + 1
            rollouts += int(info.get("rollouts", 0))
            tokens += int(info.get("policy_tokens", 0))
    n = max(1, len(traces))
    out = {"traces": len(traces), "labelled": labelled, "dropped": dropped, "rollouts": rollouts, "policy_tokens": tokens,
           "rollouts_per_trace": rollouts / n, "policy_tokens_per_trace": tokens / n}
    if wall_s is not None:
        out["wall_s"] = round(wall_s, 3)
        out["wall_s_per_trace"] = round(wall_s / n, 5)
    out.update(extra)
    return out


# why a trace got no labels (the `dropped` reason its meta["label"] records) -> what that means
DROP_REASONS = {
    "low_self_confidence": "its question's self-confidence (share of the question's traces graded right) "
                           "is below --min-self-conf {min_self_conf}",
    "mc_never_zero": "graded wrong, yet no prefix had all its rollouts fail, so no first error was found",
    "unparsed_verdict": "the judge's verdict could not be parsed",
    "disagree": "the checker's and the rollouts' first errors disagree",
    "unlabelled": "no label and no reason recorded",
}


def dropped_line(dropped: dict[str, int], cfg: LabelConfig) -> str:
    """'N traces unlabelled: n1 reason1 (what it means); ...' from `summarize`'s dropped counts."""
    parts = [f"{n} {r} ({DROP_REASONS.get(r, 'see meta.label').format(**vars(cfg))})"
             for r, n in sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"{sum(dropped.values())} traces unlabelled: " + "; ".join(parts)


def _read_inputs(cfg: LabelConfig) -> tuple[list[Trace], dict[str, Problem] | None, dict[str, float] | None]:
    """Traces, problems (None without --problems) and, for a method that needs it, each problem's
    self-confidence; every name checked before any model loads."""
    traces = read_traces(cfg.traces)
    problems = {p.id: p for p in read_problems(cfg.problems)} if cfg.problems else None
    if problems:
        check_prompts(problems.values(), cfg.problems)
    _check_models(cfg, traces)
    needs = get_labeller(cfg.method).needs
    sc_map = self_confidence_by_problem(traces, problems) if "self_confidence" in needs else None
    return traces, problems, sc_map


def _write_chunks(path: Path, chunks, worker: Worker | None, bar, ray_args) -> None:
    """Label `chunks` (locally with `worker`, else over Ray) and append each chunk's lines, fsynced."""
    with open(path, "ab") as fh:
        def write(lines: list[str]) -> None:
            fh.write("".join(lines).encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(lines))

        if worker is not None or not chunks:
            for ch in chunks:
                write(worker.label(ch))
        else:
            run_ray(*ray_args, chunks, write)


def run(cfg: LabelConfig) -> Path:
    validate(cfg)
    t0 = time.perf_counter()
    out = Path(cfg.out)
    path = out / "labels.jsonl"
    check_resume(out, cfg, has_work=_has_records(path), ignore=RUNTIME_FIELDS)
    traces, problems, sc_map = _read_inputs(cfg)
    done = resume_point(path, traces)  # (cuts a torn last line of earlier work; writes nothing else)
    worker = Worker(cfg, problems, sc_map) if cfg.backend == "local" else None
    if worker is not None and done < len(traces):
        worker.load()
    # inputs and models have loaded: from here on the run directory is written
    record_config(out, cfg)
    if get_labeller(cfg.method).uses_policy:  # the policy's prompt format (options, else its model dir's, else raw)
        cfg.resolve_format(cfg.model if cfg.sampler != "hf" else cfg.model or default_policy()).save(out)
    bar = progress(total=len(traces), desc=f"label {cfg.method}", initial=done)
    _write_chunks(path, _chunks(done, traces, cfg.chunk), worker, bar, (cfg, problems, sc_map))
    bar.close()
    wall = time.perf_counter() - t0
    summary = summarize(path, wall, method=cfg.method, k=cfg.k, resumed_from=done, backend=cfg.backend)
    atomic_write_text(out / "cost.json", json.dumps(summary, indent=2) + "\n")
    print(f"labelled {summary['labelled']}/{summary['traces']} traces with {cfg.method} -> {path} "
          f"({summary['rollouts_per_trace']:.1f} rollouts, {summary['policy_tokens_per_trace']:.0f} policy tokens "
          f"per trace; {wall:.1f} s)")
    if summary["dropped"]:
        print(dropped_line(summary["dropped"], cfg))
    return out


__all__ = ["DROP_REASONS", "LabelConfig", "dropped_line", "resume_point", "run", "summarize"]
