"""Monte Carlo rollouts from step prefixes: the shared engine of every rollout-based labeler.

A *prefix i* of a trace is its prompt plus steps 0..i; a rollout is a completion sampled from
`prompt + join(steps[:i+1]) + sep`, graded by the task's grader against the gold answer.  The K
rollouts of one prefix are one sampler request with `n=K`, so a KV-cache sampler (`HFSampler`)
runs the prefix once and shares it across the K continuations.

Determinism: the rollouts of prefix i of trace j are drawn from a stream seeded by
`rollout_seed(seed, j, i, tag)` only — never by batch position — so the same trace gets the same
labels whatever else is labelled with it (local, Ray, resumed runs).

The *terminal* prefix (the whole trace, when the trace states a final answer) needs no rollout:
its MC value is the trace's own correctness (Math-Shepherd's last step, OmegaPRM's "wrong final
answer" precondition).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from prmkit.errors import InputError
from prmkit.gym.task import parse_prompt
from prmkit.policy.base import SamplingParams
from prmkit.prompting import policy_input
from prmkit.schema import Problem, Trace
from prmkit.steps import DEFAULT_SEP, join_steps
from prmkit.tasks import get_grader


def rollout_seed(seed: int, trace_index: int, prefix: int, tag: str = "") -> int:
    """A 62-bit seed that depends only on (seed, trace index, prefix index, tag)."""
    digest = hashlib.sha256(f"{seed}|{trace_index}|{prefix}|{tag}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


@dataclass
class AnswerKey:
    """Gold answer and grader of one trace (gym: read from the prompt; other tasks: `problems`)."""

    task: str
    answer: str
    grader: object

    def correct(self, text: str) -> bool:
        g = self.grader
        return bool(g.is_correct(g.extract_answer(text), self.answer))  # type: ignore[attr-defined]


_GRADER_CACHE: dict[str, object] = {}


def _grader(task: str):
    if task not in _GRADER_CACHE:
        _GRADER_CACHE[task] = get_grader(task)
    return _GRADER_CACHE[task]


def answer_key(trace: Trace, problems: dict[str, Problem] | None = None, index: int | None = None) -> AnswerKey:
    """The gold answer of a trace: `problems[trace.problem_id]` when given, else the gym answer
    computed from a gym prompt.  Anything else is an `InputError` naming the record."""
    if problems is not None and trace.problem_id in problems:
        p = problems[trace.problem_id]
        return AnswerKey(p.task, p.answer, _grader(p.task))
    try:
        chain = parse_prompt(trace.prompt)
    except InputError as e:
        where = f"trace {index}" if index is not None else "trace"
        raise InputError(f"{where} (problem_id {trace.problem_id!r}) is not a gym prompt ({e}) and no problem with "
                         "that id was given: pass --problems with the gold answers", field="problem_id") from None
    return AnswerKey("gym", str(chain.values()[-1]), _grader("gym"))


def is_terminal(trace: Trace, prefix: int) -> bool:
    """The prefix is the whole trace and the trace states a final answer."""
    return prefix == len(trace.steps) - 1 and trace.final_answer is not None


def trace_correct(trace: Trace, key: AnswerKey) -> bool:
    """Is the trace's final answer right (its own `outcome` when graded, else regraded)."""
    if trace.outcome is not None:
        return trace.outcome >= 0.5
    return bool(key.grader.is_correct(trace.final_answer, key.answer))  # type: ignore[attr-defined]


@dataclass
class RolloutConfig:
    """How prefixes are rolled out (shared by mc, omega, scan, consensus, progress)."""

    k: int = 8
    max_new_tokens: int = 96
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    sep: str = DEFAULT_SEP
    share_prefix: bool = True

    def params(self) -> SamplingParams:
        return SamplingParams(n=self.k, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                              top_p=self.top_p, seed=self.seed)


@dataclass
class Probe:
    """One MC estimate request: prefix `prefix` (-1 = the question alone) of trace `index`."""

    index: int
    trace: Trace
    key: AnswerKey
    prefix: int
    tag: str = ""


@dataclass
class ProbeResult:
    correct: int  # rollouts reaching the gold answer (k for a right terminal prefix, 0 for a wrong one)
    k: int  # rollouts the estimate stands for
    rollouts: int  # rollouts actually sampled (0 for a terminal prefix)
    tokens: int  # policy tokens generated
    samples: list[tuple[str, bool, int]] | None = None  # (completion text, correct, tokens) per rollout

    @property
    def mc(self) -> float:
        return self.correct / self.k


@dataclass
class Cost:
    rollouts: int = 0
    tokens: int = 0
    extra: dict = field(default_factory=dict)

    def add(self, r: ProbeResult) -> None:
        self.rollouts += r.rollouts
        self.tokens += r.tokens


def prefix_text(trace: Trace, prefix: int, sep: str) -> str:
    """Solution text of steps 0..prefix followed by the separator ('' for prefix -1)."""
    return join_steps(trace.steps[:prefix + 1], sep) + sep if prefix >= 0 else ""


def estimate(sampler, probes: Sequence[Probe], rc: RolloutConfig) -> list[ProbeResult]:
    """MC estimates for many prefixes in one batched sampler call (terminal prefixes are free)."""
    results: list[ProbeResult | None] = [None] * len(probes)
    todo = []
    for j, p in enumerate(probes):
        if p.prefix >= 0 and is_terminal(p.trace, p.prefix):
            results[j] = ProbeResult(rc.k if trace_correct(p.trace, p.key) else 0, rc.k, 0, 0)
        else:
            todo.append(j)
    if todo:
        prompts = [policy_input(sampler, probes[j].trace.prompt) + prefix_text(probes[j].trace, probes[j].prefix, rc.sep)
                   for j in todo]
        seeds = [rollout_seed(rc.seed, probes[j].index, probes[j].prefix, probes[j].tag) for j in todo]
        kwargs = {} if rc.share_prefix else {"share_prefix": False}
        groups = sampler.sample(prompts, rc.params(), seeds=seeds, **kwargs)
        for j, group in zip(todo, groups):
            p = probes[j]
            head = prefix_text(p.trace, p.prefix, rc.sep)
            samples = [(c.text, p.key.correct(head + c.text), len(c.token_ids)) for c in group]
            results[j] = ProbeResult(sum(ok for _, ok, _ in samples), len(group), len(group),
                                     sum(n for _, _, n in samples), samples)
    return results  # type: ignore[return-value]
