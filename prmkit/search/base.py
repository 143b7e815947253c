"""One signature for every test-time search strategy, and what they share.

    run = SEARCHES[name](problems, sampler, rm, params)   # -> SearchRun

`problems` are prmkit `Problem`s, `sampler` any `Sampler` (HFSampler, OpenAISampler), `rm` any
`RewardModel`, `params` a `SearchParams`. A `SearchRun` holds, per problem, the finished
candidate solutions with their step scores and response scores, the selected answer, whether it
is right, the policy tokens that problem used, and one `Compute` record for the whole run.

A *step* is text generated until the sampler's separator (`sampler.sep`, "\\n" in the gym);
the policy continues from `problem.prompt + step_1 + sep + ... + step_k + sep`. A solution ends
when the policy emits EOS, writes an empty step, or runs out of tokens. All strategies process
every problem in lockstep (one batched sampler call and one batched reward-model call per round)
and seed each expansion from (seed, problem id, position in the search), so a problem's result
does not depend on which other problems share its batch.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from typing import Sequence

from prmkit.errors import InputError
from prmkit.evaluate.metrics import group_answers, majority_vote, select_argmax, weighted_vote
from prmkit.policy.base import Completion, SamplingParams
from prmkit.prompting import policy_input
from prmkit.rewards.aggregate import AGGREGATIONS, aggregate
from prmkit.schema import Problem, Trace
from prmkit.search.budget import Compute, ComputeMeter
from prmkit.steps import split_steps
from prmkit.tasks import answer_equivalence
from prmkit.tasks import grade as grade_text

SELECT_RULES = ("argmax", "majority", "weighted")


@dataclass
class CommonParams:
    """Knobs every strategy shares (each reads the ones it needs; defaults follow search-and-learn)."""

    n: int = 4
    """compute budget N: samples (best_of_n), active beams (beam, early_reject), total leaves (dvts)"""
    beam_width: int = 4
    """M: expansions per surviving beam (beam, early_reject); candidates per step of a subtree (dvts)"""
    lookahead: int = 0
    """greedy steps added to a candidate before scoring, not committed (beam, dvts)"""
    dedup: bool = False
    """drop beams whose text duplicates a better one before keeping the top N/M (beam, early_reject)"""
    tau: int = 4
    """early_reject: tokens of each candidate step generated before the partial step is scored"""
    keep_fraction: float = 0.0
    """early_reject: fraction of partial candidates finished (0 = 1/M, as beam search keeps)"""
    temperature: float = 0.8
    """sampling temperature (0 = greedy)"""
    top_p: float = 1.0
    """nucleus mass"""
    max_step_tokens: int = 256
    """most tokens of one step"""
    max_steps: int = 40
    """most steps of a solution (beam, dvts, early_reject, mcts)"""
    max_new_tokens: int = 1024
    """most tokens of a whole solution (best_of_n, the last step of a step-level search, rollouts)"""
    aggregation: str = ""
    """step scores -> response score (min, prod, last, mean, sum; empty: the reward model's own)"""
    select: str = "weighted"
    """final choice among candidates: argmax, majority or weighted (vote weighted by response score)"""
    seed: int = 0
    """seed of every sampler call (mixed with the problem id and the position in the search)"""

    def __post_init__(self) -> None:
        for name in ("n", "beam_width", "max_step_tokens", "max_steps", "max_new_tokens", "tau"):
            if getattr(self, name) < 1:
                raise InputError(f"expected {name} >= 1, got {getattr(self, name)}", field=name)
        if self.lookahead < 0:
            raise InputError(f"expected lookahead >= 0, got {self.lookahead}", field="lookahead")
        if self.aggregation and self.aggregation not in AGGREGATIONS:
            raise InputError(f"unknown aggregation {self.aggregation!r}; expected one of {sorted(AGGREGATIONS)}",
                             field="aggregation")
        if self.select not in SELECT_RULES:
            raise InputError(f"unknown select rule {self.select!r}; expected one of {SELECT_RULES}", field="select")
        if not 0.0 <= self.keep_fraction <= 1.0:
            raise InputError(f"expected keep_fraction in [0, 1], got {self.keep_fraction}", field="keep_fraction")


@dataclass
class MCTSParams:
    """Knobs only MCTS reads (`mcts.py`; ReST-MCTS*, arXiv 2406.03816, with widening and value gating)."""

    branch: int = 3
    """mcts: children sampled per expansion"""
    c_uct: float = 0.7
    """mcts: UCT exploration constant"""
    rollout_steps: int = 3
    """mcts: greedy steps rolled forward from the best new child (0 = no rollout)"""
    rollout_alpha: float = 0.5
    """mcts: V <- (1 - alpha) V + alpha V_rollout"""
    end_gate: float = 0.9
    """mcts: a finished solution with value >= end_gate ends the search of its problem"""
    max_iterations: int = 50
    """mcts: most select-expand-backup iterations per problem"""
    token_budget: int = 0
    """mcts: most policy tokens per problem (0 = unlimited)"""
    widen: float = 0.0
    """mcts: progressive-widening exponent alpha (a node visited N times holds up to branch x ceil((N+1)^alpha)
    children; 0 = fixed branching)"""
    merge_siblings: bool = False
    """mcts: a sampled step identical to a sibling's adds no node"""
    widen_gate: float = 0.0
    """mcts: value-gated widening (> 0 turns it on): children valued below the gate are never entered; a node
    with no open, unfinished child at or above it is expanded again instead of entered, and one that can widen
    no more is a dead end the search backs out of"""
    max_expansions: int = 0
    """mcts: most expansions of one node (0 = no cap: widening stops at an expansion that brings no new
    distinct step); with a cap, only the cap stops it"""

    def __post_init__(self) -> None:
        for name in ("branch", "max_iterations"):
            if getattr(self, name) < 1:
                raise InputError(f"expected {name} >= 1, got {getattr(self, name)}", field=name)
        for name in ("rollout_steps", "token_budget", "widen", "widen_gate", "max_expansions"):
            if getattr(self, name) < 0:
                raise InputError(f"expected {name} >= 0, got {getattr(self, name)}", field=name)


@dataclass
class SearchParams(MCTSParams, CommonParams):
    """Knobs of every strategy: the shared ones (`CommonParams`), then MCTS's own (`MCTSParams`), in one flat
    record (the command line, the cache keys and the saved configs name them flat). A strategy reads its own
    group: `params.mcts` is the MCTS group alone."""

    def __post_init__(self) -> None:
        CommonParams.__post_init__(self)
        MCTSParams.__post_init__(self)

    @property
    def mcts(self) -> MCTSParams:
        """The MCTS knobs of these params, as their own record."""
        return MCTSParams(**{f.name: getattr(self, f.name) for f in fields(MCTSParams)})


@dataclass
class Solution:
    """One candidate solution: its steps, their scores, and its grade."""

    steps: list[str]
    step_scores: list[float]
    score: float
    finished: bool = True
    answer: str | None = None
    correct: bool = False
    first_error: int | None = None
    tokens: int = 0  # policy tokens of this candidate alone, where one completion made it (best_of_n)


@dataclass
class ProblemResult:
    problem: Problem
    solutions: list[Solution]
    chosen: int  # index into solutions, -1 when there is none
    policy_tokens: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def answer(self) -> str | None:
        return self.solutions[self.chosen].answer if self.chosen >= 0 else None

    @property
    def correct(self) -> bool:
        return self.chosen >= 0 and self.solutions[self.chosen].correct


@dataclass
class SearchRun:
    method: str
    params: SearchParams
    results: list[ProblemResult]
    compute: Compute

    @property
    def accuracy(self) -> float:
        return sum(r.correct for r in self.results) / max(1, len(self.results))

    @property
    def error_free_accuracy(self) -> float | None:
        """Share of problems whose selected solution is right *and* has no step error (gold first error -1).
        Only where the task gives gold first errors (the gym); None otherwise. On the gym a right answer
        can come from errors that cancel, which `accuracy` counts and this does not."""
        if not self.results:
            return None
        chosen = [r.solutions[r.chosen] if r.chosen >= 0 else None for r in self.results]
        if any(s is not None and s.first_error is None for s in chosen):
            return None
        return sum(s is not None and s.correct and s.first_error == -1 for s in chosen) / len(self.results)

    def summary(self) -> dict:
        n = max(1, len(self.results))
        return {"method": self.method, "problems": len(self.results), "accuracy": self.accuracy,
                "error_free_accuracy": self.error_free_accuracy,
                "policy_tokens_per_problem": self.compute.policy_tokens / n,
                "flops_per_problem": self.compute.flops / n, **self.compute.to_dict()}

    def to_traces(self) -> list[Trace]:
        """Every candidate as a graded prmkit Trace; meta says which one the search selected."""
        out = []
        for r in self.results:
            for i, s in enumerate(r.solutions):
                out.append(Trace(problem_id=r.problem.id, prompt=r.problem.prompt, steps=s.steps or [""],
                                 final_answer=s.answer, outcome=float(s.correct), first_error=s.first_error,
                                 meta={"method": self.method, "score": s.score, "step_scores": s.step_scores,
                                       "selected": i == r.chosen, "finished": s.finished}))
        return out


# --------------------------------------------------------------------------------------- helpers


def derive_seed(*parts) -> int:
    """A 31-bit seed from the search seed, the problem id and a position in the search."""
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def prefix_text(prompt: str, steps: Sequence[str], sep: str) -> str:
    """What the policy continues from: the prompt then each committed step followed by the separator."""
    return prompt + "".join(s + sep for s in steps)


def aggregation_of(rm, params: SearchParams) -> str:
    return params.aggregation or getattr(rm, "aggregation", "min") or "min"


def grade(problem: Problem, steps: Sequence[str], sep: str) -> tuple[str | None, bool, int | None]:
    """(answer, correct, gold first error or None) of a solution, by the problem's task (`tasks.grade`)."""
    return grade_text(problem, sep.join(steps))


def make_solution(problem: Problem, steps: list[str], step_scores: list[float], how: str, sep: str,
                  finished: bool = True) -> Solution:
    answer, correct, fe = grade(problem, steps, sep)
    score = aggregate(step_scores, how) if step_scores else float("-inf")
    return Solution(steps=list(steps), step_scores=list(step_scores), score=score, finished=finished,
                    answer=answer, correct=correct, first_error=fe)


def select(solutions: Sequence[Solution], rule: str, equivalent=None) -> int:
    """Index of the selected solution (docs/methods.md). Solutions with a parsed answer are preferred;
    for votes, the best-scored solution holding the winning answer is returned. `equivalent` is the
    task's answer equivalence (`prmkit.tasks.answer_equivalence`; None = exact strings)."""
    if not solutions:
        return -1
    pool = [i for i, s in enumerate(solutions) if s.answer is not None] or list(range(len(solutions)))
    if rule == "argmax":
        return pool[select_argmax([solutions[i].score for i in pool])]
    groups = group_answers([solutions[i].answer for i in pool], equivalent)
    winner = (majority_vote(groups) if rule == "majority"
              else weighted_vote(groups, [max(0.0, solutions[i].score) for i in pool]))
    if winner is None:
        return pool[select_argmax([solutions[i].score for i in pool])]
    holders = [i for i, g in zip(pool, groups) if g == winner]
    return holders[select_argmax([solutions[i].score for i in holders])]


def task_equivalence(problem: Problem):
    """The answer equivalence votes use for this problem's task (None for the gym: exact strings)."""
    return answer_equivalence(problem.task)


@dataclass
class StepOut:
    """One expansion: the new step(s), whether the solution ended, and the tokens it took."""

    steps: list[str]
    ended: bool
    tokens: int
    partial: bool = False  # stopped by a token limit inside a step (early rejection's phase 1)
    sep_hit: bool = False  # ended by the separator (the step is whole, possibly empty)


class Policy:
    """The sampler as the searches use it: step-level generation, seeded, with token accounting."""

    def __init__(self, sampler, meter: ComputeMeter, params: SearchParams, num_problems: int):
        self.sampler, self.meter, self.params = sampler, meter, params
        self.sep = getattr(sampler, "sep", "\n")
        self.tokens_by_problem = [0] * num_problems
        self._rendered: dict[str, str] = {}

    def render(self, problem_prompt: str) -> str:
        """The policy's input for a problem (its prompt format applied; the text itself by default)."""
        r = self._rendered.get(problem_prompt)
        if r is None:
            r = self._rendered[problem_prompt] = policy_input(self.sampler, problem_prompt)
        return r

    def prefix(self, problem_prompt: str, steps: Sequence[str]) -> str:
        """What the policy continues from: the rendered problem, then each committed step and the separator."""
        return prefix_text(self.render(problem_prompt), steps, self.sep)

    def expand(self, prompts: Sequence[str], owners: Sequence[int], seeds: Sequence[int], n: int, *,
               greedy: bool = False, max_tokens: int | None = None, whole: bool = False) -> list[list[StepOut]]:
        """n continuations of each prompt: one step (stop at the separator), or the whole rest of
        the solution when `whole`; `max_tokens` caps each continuation (early rejection's tau)."""
        if not prompts:
            return []
        p = self.params
        sp = SamplingParams(n=n, max_new_tokens=max_tokens or (p.max_new_tokens if whole else p.max_step_tokens),
                            temperature=0.0 if greedy else p.temperature, top_p=p.top_p,
                            stop=[] if whole else [self.sep])
        groups = self.sampler.sample(list(prompts), sp, seeds=list(seeds))
        out = []
        for owner, group in zip(owners, groups):
            row = []
            for c in group:
                k = len(c.token_ids) or len(c.text)  # a server that returns no ids: count characters
                self.meter.generated(k)
                self.tokens_by_problem[owner] += k
                row.append(self._classify(c, whole, max_tokens))
            out.append(row)
        return out

    def _classify(self, c: Completion, whole: bool, max_tokens: int | None) -> StepOut:
        k = len(c.token_ids) or len(c.text)
        if whole:
            return StepOut(split_steps(c.text, self.sep), ended=True, tokens=k)
        if c.finish_reason == "stop" and c.stop == self.sep:   # the separator: one whole step
            return StepOut([c.text] if c.text.strip() else [], ended=not c.text.strip(), tokens=k, sep_hit=True)
        if c.finish_reason == "length" and max_tokens is not None:
            return StepOut([c.text], ended=False, tokens=k, partial=True)
        return StepOut([c.text] if c.text.strip() else [], ended=True, tokens=k)  # EOS or step too long


def score_prefixes(rm, prompts: Sequence[str], steps: Sequence[Sequence[str]], how: str) -> list[tuple[list[float], float]]:
    """Step scores and aggregated score of each (prompt, steps); an empty prefix scores -inf."""
    idx = [i for i, s in enumerate(steps) if s]
    scored = rm.score([prompts[i] for i in idx], [list(steps[i]) for i in idx]) if idx else []
    out: list[tuple[list[float], float]] = [([], float("-inf"))] * len(steps)
    for i, sc in zip(idx, scored):
        out[i] = (list(sc), aggregate(sc, how))
    return out


def start(sampler, rm, params: SearchParams, problems: Sequence[Problem]) -> tuple[ComputeMeter, Policy]:
    meter = ComputeMeter(sampler, rm)
    return meter, Policy(sampler, meter, params, len(problems))


def finish(method: str, params: SearchParams, problems: Sequence[Problem], pools: list[list[Solution]],
           policy: Policy, meter: ComputeMeter, metas: list[dict] | None = None) -> SearchRun:
    results = [ProblemResult(problem=p, solutions=pool, chosen=select(pool, params.select, task_equivalence(p)),
                             policy_tokens=policy.tokens_by_problem[i], meta=(metas[i] if metas else {}))
               for i, (p, pool) in enumerate(zip(problems, pools))]
    return SearchRun(method=method, params=params, results=results, compute=meter.finish())
