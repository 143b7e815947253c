"""Turn-level test-time search for agents: best-of-N over whole episodes and beam search over turns.

* **best-of-N**: N episodes per problem (`agents.rollout`); each finished episode is scored by a turn
  reward model on its turn trace (`turns.episode_trace`: turns as steps) and one is chosen by the
  aggregated turn scores (`prm`), by the most frequent answer (`majority`) or by the answer with
  the largest summed score (`weighted`).
* **beam**: N partial episodes; each expands M candidate next actions sampled by the policy, the
  environment answers each, the turn RM scores the new prefix's last turn; finished episodes are set
  aside, the N best unfinished ones go on. The final pick among the set-aside episodes (and those
  cut by the turn budget) uses the same rule as best-of-N on the turn scores recorded during search.
* **look-ahead** (ReARTeR's TD look-ahead, arXiv 2501.07861): a candidate's value is corrected by a
  short greedy continuation after it: values V_0..V_k (V_0 the candidate turn's, V_t the t-th
  look-ahead turn's, as logits), cut at the first t with V_{t+1} - V_t < `min_gain`, then backward
  V_t <- V_t + alpha (V_{t+1} - V_t); the score is sigmoid(V_0).

The turn reward model is either any prmkit reward model (`load_reward_model(dir)`, scoring turn
traces: a PRM trained on turn traces) or the environment's exact gold as a checker (`checker`, or
`checker:<p>` with each verdict flipped with probability p, keyed by the turn's prefix so the same
prefix always gets the same verdict).
"""

from __future__ import annotations

import copy
import math
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from prmkit.agents.env import Episode
from prmkit.agents.rollout import RolloutParams, _apply, _start, _takes_ids, episode_seed, rollout
from prmkit.agents.turns import episode_trace
from prmkit.errors import InputError
from prmkit.policy.base import SamplingParams
from prmkit.schema import Problem

SELECT_RULES = ("prm", "majority", "weighted")
_EPS = 1e-4  # probabilities are clamped to [eps, 1 - eps] before taking logits


# ---------------------------------------------------------------- pure selection functions


def top_n(scores: Sequence[float], n: int) -> list[int]:
    """Indices of the `n` highest scores, best first (ties: the earlier index)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:n]


def select_episode(scores: Sequence[float], answers: Sequence[str | None], rule: str) -> int:
    """Index of the chosen episode. `prm`: highest score; `majority`: the first episode with the most
    frequent answer; `weighted`: the first episode with the answer of largest summed score. Episodes
    without an answer take part in `prm` only (the votes fall back to `prm` when none has an answer)."""
    if rule not in SELECT_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; expected one of {SELECT_RULES}")
    if not scores:
        raise ValueError("cannot select from no episodes")
    voted = [i for i, a in enumerate(answers) if a is not None]
    if rule == "prm" or not voted:
        return top_n(scores, 1)[0]
    weight: Counter = Counter()
    for i in voted:
        weight[answers[i]] += 1.0 if rule == "majority" else scores[i]
    best = max(weight.values())
    return next(i for i in voted if weight[answers[i]] == best)


def lookahead_value(values: Sequence[float], alpha: float = 0.5, min_gain: float = 0.05) -> float:
    """ReARTeR's TD look-ahead correction of V_0 (arXiv 2501.07861; its `update_values`): stop at the
    first t with V_{t+1} - V_t < `min_gain` (else at the last value), then for t from there down to 0
    V_t <- V_t + alpha (V_{t+1} - V_t), each with the already-updated V_{t+1}."""
    v = list(values)
    if not v:
        raise ValueError("expected at least one value")
    stop = next((t + 1 for t in range(len(v) - 1) if v[t + 1] - v[t] < min_gain), len(v) - 1)
    for t in range(stop - 1, -1, -1):
        v[t] = v[t] + alpha * (v[t + 1] - v[t])
    return v[0]


def logit(p: float) -> float:
    p = min(max(float(p), _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------- turn reward models


class CheckerTurnRM:
    """The environment's exact turn gold as a turn reward model: 1 for a turn that is not wrong, 0 for
    a wrong one; with `flip` > 0 each verdict is flipped with that probability (a noisy verifier)."""

    aggregation = "min"

    def __init__(self, task, flip: float = 0.0, seed: int = 0):
        if task.gold is None:
            raise InputError(f"environment {task.name!r} gives no turn gold, so it has no checker", field="turn_rm")
        self.task, self.flip, self.seed = task, flip, seed
        self.tokens_scored, self.num_parameters = 0, 0

    def _flipped(self, problem_id: str, actions: list[str]) -> bool:
        key = zlib.crc32(f"{self.seed}\x00{problem_id}\x00{chr(10).join(actions)}".encode("utf-8"))
        return self.flip > 0 and key / 2**32 < self.flip

    def score(self, problems: Sequence[Problem], episodes: Sequence[Episode]) -> list[list[float]]:
        out = []
        for problem, ep in zip(problems, episodes):
            actions = [t.action for t in ep.turns]
            gold = self.task.gold(problem, actions)
            right = [0.0 if g.get("wrong") else 1.0 for g in gold]
            out.append([1.0 - r if self._flipped(problem.id, actions[: i + 1]) else r for i, r in enumerate(right)])
        return out


class ModelTurnRM:
    """A prmkit reward model scoring each episode's turn trace (turns as steps)."""

    def __init__(self, rm):
        self.rm, self.aggregation = rm, rm.aggregation
        self.num_parameters = int(getattr(rm, "num_parameters", 0) or 0)

    @property
    def tokens_scored(self) -> int:
        return int(getattr(getattr(self.rm, "stats", None), "tokens_scored", 0))

    def score(self, problems: Sequence[Problem], episodes: Sequence[Episode]) -> list[list[float]]:
        from prmkit.rewards.base import score_traces

        traces = [episode_trace(e, labels="none") for e in episodes]
        return [list(map(float, s)) for s in score_traces(self.rm, traces)]


def checker_flip(spec: str) -> float | None:
    """The flip rate of a `checker` / `checker:<p>` spec; None for any other spec (a reward model)."""
    name, _, rate = spec.partition(":")
    if name != "checker":
        return None
    try:
        flip = float(rate) if rate else 0.0
    except ValueError:
        flip = -1.0
    if not 0.0 <= flip <= 1.0:
        raise InputError(f"turn reward model {spec!r}: expected checker:<flip rate in [0, 1]>", field="turn_rm")
    return flip


def make_turn_rm(spec: str, task, seed: int = 0):
    """`checker`, `checker:<flip rate>`, or a reward model dir / hub id (`load_reward_model`)."""
    flip = checker_flip(spec)
    if flip is not None:
        return CheckerTurnRM(task, flip, seed)
    from prmkit.rewards import load_reward_model

    return ModelTurnRM(load_reward_model(spec))


# ---------------------------------------------------------------- search


@dataclass
class TurnSearchParams:
    """How a turn-level search samples and selects."""

    n: int = 4
    """best-of-N: episodes per problem; beam: beam width"""
    m: int = 2
    """beam: candidate next actions per beam"""
    select: str = "prm"
    """final pick: prm (aggregated turn scores), majority or weighted (vote over answers)"""
    aggregation: str = "min"
    """how an episode's turn scores become one score (min, prod, last, mean, sum)"""
    lookahead: int = 0
    """beam: greedy look-ahead turns of ReARTeR's value correction (0 = off)"""
    alpha: float = 0.5
    """look-ahead: TD step size"""
    min_gain: float = 0.05
    """look-ahead: the value gain under which the look-ahead is cut"""
    max_turns: int = 10
    """most actions per episode"""
    max_action_tokens: int = 24
    """most tokens per action"""
    temperature: float = 1.0
    """sampling temperature (0 = greedy)"""
    top_p: float = 1.0
    """nucleus mass"""
    seed: int = 0
    """seed of every episode's stream"""


@dataclass
class SearchResult:
    """One problem's search: the chosen episode, every candidate episode with its score, the compute."""

    chosen: Episode
    candidates: list[Episode]
    scores: list[float]


def _rollout_params(p: TurnSearchParams, k: int, temperature: float | None = None) -> RolloutParams:
    return RolloutParams(k=k, max_turns=p.max_turns, max_action_tokens=p.max_action_tokens, seed=p.seed,
                         temperature=p.temperature if temperature is None else temperature, top_p=p.top_p)


def _episode(row, task) -> Episode:
    last = row.turns[-1].action if row.finished and row.turns else None
    answer = last[2:] if last and last.startswith("A:") else None
    ep = Episode(problem_id=row.problem.id, prompt=row.problem.prompt, turns=list(row.turns),
                 finished=row.finished, answer=answer, meta={"k": row.k})
    ep.outcome = task.outcome(row.problem, ep)
    return ep


def _pick(episodes: list[Episode], turn_scores: list[list[float]], p: TurnSearchParams) -> tuple[int, list[float]]:
    from prmkit.rewards.aggregate import aggregate

    scores = [aggregate(s, p.aggregation) if s else 0.0 for s in turn_scores]
    return select_episode(scores, [e.answer for e in episodes], p.select), scores


def best_of_n(sampler, task, problems: Sequence[Problem], rm, p: TurnSearchParams) -> list[SearchResult]:
    """N episodes per problem, each scored by the turn RM on its turn trace, one chosen per problem."""
    pairs = rollout(sampler, problems, task.make_env, _rollout_params(p, p.n))
    out = []
    for i, problem in enumerate(problems):
        eps = [ep for ep, _ in pairs[i * p.n:(i + 1) * p.n]]
        for ep in eps:
            ep.outcome = task.outcome(problem, ep)
        turn_scores = rm.score([problem] * len(eps), eps)
        j, scores = _pick(eps, turn_scores, p)
        out.append(SearchResult(chosen=eps[j], candidates=eps, scores=scores))
    return out


def _expand(sampler, rows: list, m: int, p: TurnSearchParams, turn: int, temperature: float) -> list[list]:
    """M sampled completions of each row's context (each row's stream seeded by its own text)."""
    sp = SamplingParams(n=m, max_new_tokens=p.max_action_tokens, temperature=temperature, top_p=p.top_p,
                        stop=["\n"])
    seeds = [episode_seed(p.seed, r.problem.id, zlib.crc32(r.text.encode("utf-8")), turn) for r in rows]
    if _takes_ids(sampler):
        return sampler.sample_ids([r.tokens.ids for r in rows], sp, seeds)
    return sampler.sample([r.text for r in rows], sp, seeds=seeds)


def _children(sampler, rows: list, m: int, p: TurnSearchParams, turn: int, temperature: float) -> list:
    rp = _rollout_params(p, 1)
    kids = []
    for row, group in zip(rows, _expand(sampler, rows, m, p, turn, temperature)):
        for c in group:
            kid = copy.deepcopy(row)  # the environment is copied with its row: each branch has its own
            _apply(sampler, kid, c, rp)
            kids.append(kid)
    return kids


def _lookahead_scores(sampler, task, kids: list, last: list[float], rm, p: TurnSearchParams, turn: int) -> list[float]:
    """sigmoid(corrected V_0) of each candidate, V from a greedy continuation of `p.lookahead` turns."""
    values = [[logit(s)] for s in last]
    live = [(i, copy.deepcopy(k)) for i, k in enumerate(kids) if not (k.finished or k.stopped)]
    for step in range(p.lookahead):
        live = [(i, r) for i, r in live if not (r.finished or r.stopped)]
        if not live:
            break
        cont = _expand(sampler, [r for _, r in live], 1, p, turn + 1 + step, 0.0)
        for (i, r), group in zip(live, cont):
            _apply(sampler, r, group[0], _rollout_params(p, 1))
        scored = rm.score([r.problem for _, r in live], [_episode(r, task) for _, r in live])
        for (i, _), s in zip(live, scored):
            values[i].append(logit(s[-1]))
    return [sigmoid(lookahead_value(v, p.alpha, p.min_gain)) for v in values]


def beam_one(sampler, task, problem: Problem, rm, p: TurnSearchParams) -> SearchResult:
    """Beam search over turns for one problem (see the module docstring)."""
    beams = [(row, []) for row in _start(sampler, [problem], task.make_env, _rollout_params(p, 1))]
    done: list[tuple] = []
    for turn in range(p.max_turns):
        if not beams:
            break
        kids = _children(sampler, [r for r, _ in beams], p.m, p, turn, p.temperature)
        parents = [sc for _, sc in beams for _ in range(p.m)]
        last = [s[-1] for s in rm.score([problem] * len(kids), [_episode(k, task) for k in kids])]
        rank = _lookahead_scores(sampler, task, kids, last, rm, p, turn) if p.lookahead else last
        scored = [(k, sc + [s], r) for k, sc, s, r in zip(kids, parents, last, rank)]
        done += [(k, sc) for k, sc, _ in scored if k.finished or k.stopped]
        going = [(k, sc, r) for k, sc, r in scored if not (k.finished or k.stopped)]
        beams = [(going[i][0], going[i][1]) for i in top_n([r for _, _, r in going], p.n)]
    done += beams  # cut by the turn budget
    eps = [_episode(r, task) for r, _ in done]
    j, scores = _pick(eps, [sc for _, sc in done], p)
    return SearchResult(chosen=eps[j], candidates=eps, scores=scores)


def beam(sampler, task, problems: Sequence[Problem], rm, p: TurnSearchParams) -> list[SearchResult]:
    return [beam_one(sampler, task, problem, rm, p) for problem in problems]
