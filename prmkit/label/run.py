"""`prmkit label`: label traces with one method, resumably, locally or over Ray actors.

Work is cut into chunks of `--chunk` consecutive traces.  Each chunk's records are appended to
`RUN_DIR/labels.jsonl` in input order as whole lines, flushed and fsynced; a rerun of the same
command checks the lines already there against the input (dropping a torn last line) and continues
after them.  Every trace's randomness is seeded by (seed, trace index), so the output does not
depend on chunking, backend, worker count or interruptions: it is byte-identical.
`RUN_DIR/cost.json` sums rollouts, policy tokens and wall time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prmkit.errors import InputError
from prmkit.prompting import PromptOptions
from prmkit.schema import Problem, Trace, to_dict

METHODS = ("mc", "omega", "scan", "verify", "judge", "consensus", "progress")
ROLLOUT_METHODS = ("mc", "omega", "scan", "consensus", "progress")  # those that sample from the completer


@dataclass
class LabelConfig(PromptOptions):
    """Label the steps of traces automatically (MC, OmegaPRM, SCAN, tools, judge, consensus, progress)."""

    method: str = "mc"
    """mc | omega | scan | verify | judge | consensus | progress"""
    traces: str = ""
    """input traces JSONL (prmkit schema)"""
    out: str = "runs/label"
    """run directory: labels.jsonl, config.json, cost.json; rerunning continues an interrupted run"""
    problems: str = ""
    """problems JSONL with gold answers (not needed for gym traces)"""
    model: str = ""
    """completer policy: local dir or hub id (empty: the shipped gym policy)"""
    sampler: str = "hf"
    """completer backend: hf or openai"""
    base_url: str = ""
    """server URL for --sampler openai"""
    sep: str = "\n"
    """step separator"""
    k: int = 8
    """rollouts per step prefix"""
    mode: str = "hard"
    """mc labels: hard (any rollout correct) or soft (fraction correct)"""
    max_new_tokens: int = 96
    """most tokens per rollout"""
    temperature: float = 1.0
    """rollout temperature"""
    seed: int = 0
    """base seed; trace i's rollouts use (seed, i)"""
    batch_size: int = 64
    """rows decoded together by the hf sampler"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    threads: int = 0
    """torch CPU threads per worker (0: torch's default; Ray actors use 1)"""
    chunk: int = 32
    """traces per unit of work (written together; the unit of resume and of Ray tasks)"""
    backend: str = "local"
    """local or ray"""
    workers: int = 2
    """Ray actors (each loads its own sampler)"""
    ray_address: str = ""
    """Ray cluster address (empty: start Ray locally)"""
    min_self_conf: float = 0.75
    """scan: keep questions whose self-confidence is at least this"""
    scan_window: int = 2
    """scan: steps before the MC error that get c/SC soft labels"""
    scan_robust: bool = True
    """scan: noise-tolerant soft labels (else hard)"""
    checker: str = "auto"
    """verify: auto | gym | calculator | sympy"""
    judge: str = "rule"
    """judge/consensus: rule (gym checker with --judge-error-rate) or lm"""
    judge_model: str = ""
    """lm judge: local dir or hub id (empty with no --judge-base-url: the gym policy, for plumbing)"""
    judge_base_url: str = ""
    """lm judge: OpenAI-compatible endpoint"""
    judge_error_rate: float = 0.1
    """rule judge: probability of naming a wrong first-error location"""
    judge_max_new_tokens: int = 32
    """lm judge: most tokens of a verdict"""
    prover: str = ""
    """progress: prover policy dir or hub id (empty: the completer)"""
    prover_bok: int = 1
    """progress: Best-of-K prover, Q = 1 - (1 - Q_pi)^K (1 = the prover itself)"""
    eps: float = 0.8
    """progress: relative-progress threshold"""


# options that change how the work is run but not the output
_RUNTIME_FIELDS = {"out", "backend", "workers", "ray_address", "chunk", "batch_size", "threads"}


class Worker:
    """Labels chunks; holds the samplers (one per process / Ray actor)."""

    def __init__(self, cfg: LabelConfig, problems: dict[str, Problem] | None, sc_map: dict[str, float] | None = None):
        import torch

        threads = cfg.threads or int(os.environ.get("PRMKIT_LABEL_THREADS", "0") or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        self.cfg, self.problems, self.sc_map = cfg, problems, sc_map
        self._sampler = self._prover = self._judge = None

    @property
    def sampler(self):
        if self._sampler is None:
            from prmkit.policy.sample import make_sampler

            self._sampler = make_sampler(self.cfg.model, self.cfg.sampler, self.cfg.base_url, self.cfg.sep,
                                         self.cfg.batch_size, device=self.cfg.device, prompt_options=self.cfg)
        return self._sampler

    @property
    def prover(self):
        if self._prover is None:
            if self.cfg.prover:
                from prmkit.policy.sample import make_sampler

                self._prover = make_sampler(self.cfg.prover, "hf", "", self.cfg.sep, self.cfg.batch_size,
                                            device=self.cfg.device, prompt_options=self.cfg)
            else:
                self._prover = self.sampler
        return self._prover

    @property
    def judge(self):
        if self._judge is None:
            from prmkit.label.judge import LMJudge, RuleJudge

            c = self.cfg
            if c.judge == "rule":
                self._judge = RuleJudge(c.judge_error_rate, c.seed)
            elif c.judge == "lm":
                self._judge = LMJudge.from_model(c.judge_model, c.judge_base_url, max_new_tokens=c.judge_max_new_tokens)
            else:
                raise InputError(f"unknown judge {c.judge!r}; expected rule or lm", field="judge")
        return self._judge

    def load(self) -> "Worker":
        """Load the models this method uses now (so that a missing model fails before anything is written)."""
        m = self.cfg.method
        if m in ("mc", "omega", "scan", "consensus"):
            _ = self.sampler
        if m == "progress":
            _ = self.prover
        if m in ("judge", "consensus"):
            _ = self.judge
        return self

    def rc(self):
        from prmkit.label.rollouts import RolloutConfig

        c = self.cfg
        return RolloutConfig(k=c.k, max_new_tokens=c.max_new_tokens, temperature=c.temperature, seed=c.seed, sep=c.sep)

    def label(self, items: Sequence[tuple[int, Trace]]) -> list[str]:
        """JSONL lines for the chunk, in order."""
        return [json.dumps(to_dict(t), ensure_ascii=False) + "\n" for t in self.label_traces(items)]

    def label_traces(self, items: Sequence[tuple[int, Trace]]) -> list[Trace]:
        c, items = self.cfg, list(items)
        bs = max(1, c.batch_size)
        if c.method == "mc":
            from prmkit.label.mc import mc_counts, mc_labels_from_counts

            counted = mc_counts(items, self.sampler, self.rc(), self.problems, bs)
            return [mc_labels_from_counts(t, n, cost, c.k, c.mode) for (_, t), (n, cost) in zip(items, counted)]
        if c.method == "omega":
            from prmkit.label.omega import omega_search, omega_trace

            found = omega_search(items, self.sampler, self.rc(), self.problems, bs)
            return [omega_trace(t, fe, pr, cost, c.k) for (_, t), (fe, pr, cost) in zip(items, found)]
        if c.method == "scan":
            from prmkit.label.scan import scan_chunk

            return scan_chunk(items, self.sampler, self.rc(), self.sc_map or {}, self.problems,
                              min_self_conf=c.min_self_conf, window=c.scan_window, robust=c.scan_robust,
                              batch_size=bs)
        if c.method == "verify":
            from prmkit.label.verify import label_verify

            out = []
            for idx, t in items:
                out += label_verify([t], checker=c.checker, problems=self.problems, start_index=idx)
            return out
        if c.method in ("judge", "consensus"):
            return self._judge_or_consensus(items)
        if c.method == "progress":
            from prmkit.label.progress import progress_chunk

            return progress_chunk(items, self.prover, self.rc(), self.problems, eps=c.eps,
                                  prover_bok=c.prover_bok, batch_size=bs)
        raise InputError(f"unknown method {c.method!r}; expected one of {', '.join(METHODS)}", field="method")

    def _judge_or_consensus(self, items):
        from prmkit.label import rules
        from prmkit.schema import StepLabels

        c = self.cfg
        verdicts = self.judge.judge(items)
        if c.method == "judge":
            out = []
            for (_, t), v in zip(items, verdicts):
                info = {"judge": c.judge, "first_error": v["first_error"], "verdict_text": v["text"]}
                if v["first_error"] is None:
                    out.append(dataclasses.replace(t, labels=None, meta={**t.meta, "label": {
                        "method": "judge", "dropped": "unparsed_verdict", **info}}))
                else:
                    out.append(dataclasses.replace(t, labels=StepLabels(
                        values=rules.omega_labels(len(t.steps), v["first_error"]), method="judge", meta=info)))
            return out
        from prmkit.label.mc import mc_counts

        counted = mc_counts(items, self.sampler, self.rc(), self.problems, max(1, c.batch_size))
        out = []
        for (_, t), v, (counts, cost) in zip(items, verdicts, counted):
            hard = rules.mc_hard_labels(counts, c.k)
            mc_fe = rules.first_error_from_labels(hard)
            info = {"k": c.k, "correct_counts": counts, "mc_first_error": mc_fe, "judge": c.judge,
                    "judge_first_error": v["first_error"], "verdict_text": v["text"]}
            keep = v["first_error"] is not None and rules.consensus_keep(mc_fe, v["first_error"])
            if keep:
                values = hard if mc_fe == -1 else hard[:mc_fe + 1] + [None] * (len(hard) - mc_fe - 1)
                out.append(dataclasses.replace(t, labels=StepLabels(
                    values=values, method="consensus", rollouts=cost.rollouts, policy_tokens=cost.tokens, meta=info)))
            else:
                out.append(dataclasses.replace(t, labels=None, meta={**t.meta, "label": {
                    "method": "consensus", "dropped": "disagree", "rollouts": cost.rollouts,
                    "policy_tokens": cost.tokens, **info}}))
        return out


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


def _validate(cfg: LabelConfig) -> None:
    if cfg.method not in METHODS:
        raise InputError(f"unknown method {cfg.method!r}; expected one of {', '.join(METHODS)}", field="method")
    if cfg.backend not in ("local", "ray"):
        raise InputError(f"unknown backend {cfg.backend!r}; expected local or ray", field="backend")
    if cfg.k < 1:
        raise InputError(f"expected k >= 1, got {cfg.k}", field="k")
    if cfg.mode not in ("hard", "soft"):
        raise InputError(f"expected hard or soft, got {cfg.mode!r}", field="mode")
    if cfg.workers < 1:
        raise InputError(f"expected workers >= 1, got {cfg.workers}", field="workers")
    if not cfg.traces:
        raise InputError("--traces is required (a traces JSONL file)", field="traces")


POLICY_METHODS = ("mc", "omega", "scan", "consensus", "progress")   # methods that roll out the --model policy


def _check_models(cfg: LabelConfig, traces) -> None:
    """The policy names, checked before any model loads; the gym policy is a default on gym traces only."""
    from prmkit.resolve import all_gym_prompts, check_model_name, policy_path

    if cfg.sampler == "hf" and cfg.method in POLICY_METHODS:
        policy_path(cfg.model, "model", all_gym_prompts(t.prompt for t in traces))
    for name in ("prover", "judge_model"):
        value = getattr(cfg, name, "")
        if value:
            check_model_name(value, name, "a causal LM")


def summarize(path: Path, wall_s: float | None = None, **extra: Any) -> dict:
    """Cost and coverage of a labels file: totals and per-trace means."""
    from prmkit.schema import read_traces

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


def run(cfg: LabelConfig) -> Path:
    from prmkit.progress import progress
    from prmkit.resolve import read_problems
    from prmkit.rundir import check_resume, record_config
    from prmkit.schema import read_traces

    _validate(cfg)
    t0 = time.perf_counter()
    out = Path(cfg.out)
    path = out / "labels.jsonl"
    check_resume(out, cfg, has_work=_has_records(path), ignore=_RUNTIME_FIELDS)
    traces = read_traces(cfg.traces)
    problems = {p.id: p for p in read_problems(cfg.problems)} if cfg.problems else None
    if problems:
        from prmkit.gym.task import check_prompts

        check_prompts(problems.values(), cfg.problems)
    _check_models(cfg, traces)
    sc_map = None
    if cfg.method == "scan":
        from prmkit.label.scan import self_confidence_by_problem

        sc_map = self_confidence_by_problem(traces, problems)
    done = resume_point(path, traces)  # (cuts a torn last line of earlier work; writes nothing else)
    worker = Worker(cfg, problems, sc_map) if cfg.backend == "local" else None
    if worker is not None and done < len(traces):
        worker.load()
    # inputs and models have loaded: from here on the run directory is written
    record_config(out, cfg)
    if cfg.method in ROLLOUT_METHODS:  # the policy's prompt format (options, else its model dir's, else raw)
        from prmkit.policy.sample import default_policy

        cfg.resolve_format(cfg.model if cfg.sampler != "hf" else cfg.model or default_policy()).save(out)
    chunks = _chunks(done, traces, cfg.chunk)
    bar = progress(total=len(traces), desc=f"label {cfg.method}", initial=done)
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
            from prmkit.label.ray_backend import run_ray

            run_ray(cfg, problems, sc_map, chunks, write)
    bar.close()
    wall = time.perf_counter() - t0
    summary = summarize(path, wall, method=cfg.method, k=cfg.k, resumed_from=done, backend=cfg.backend)
    from prmkit.schema import atomic_write_text

    atomic_write_text(out / "cost.json", json.dumps(summary, indent=2) + "\n")
    print(f"labelled {summary['labelled']}/{summary['traces']} traces with {cfg.method} -> {path} "
          f"({summary['rollouts_per_trace']:.1f} rollouts, {summary['policy_tokens_per_trace']:.0f} policy tokens "
          f"per trace; {wall:.1f} s)")
    if summary["dropped"]:
        print(dropped_line(summary["dropped"], cfg))
    return out
