"""Multi-turn rollouts: K episodes per problem, in batches, with any sampler and any environment.

Each turn, every unfinished episode's context is sampled once up to the end of its action line
(stop string `\\n`); the environment answers; the observation is appended; until the action
finishes the episode or a turn or token budget runs out. Every episode draws from its own seed
stream `(seed, problem, k, turn)`, so an episode's text does not depend on which others share
its batch.

With a local sampler that takes token ids (`HFSampler.sample_ids`) the context is kept as token
ids: the generated action tokens exactly as sampled, then the observation's tokens; with the
sampler's key/value prefix cache on (`set_kv_cache`), a turn prefills only the new observation
tokens. With a text sampler (an OpenAI-compatible server) the context is kept as text and the
tool loop runs here, on the client side; text loses a special token the policy sampled inside an
action (it decodes to nothing), so the server's re-tokenised context then differs from the tokens
sampled. `OpenAISampler(token_prompts=True)` keeps the context as token ids over the wire instead
(token-id prompts and `/tokenize`, as vLLM and `prmkit serve-policy` take) and matches the local
sampler exactly. `EpisodeTokens.action_mask` marks the tokens the policy
generated: observation and prompt tokens get zero weight in every policy loss.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from prmkit.agents.env import EnvFactory, Episode, Turn
from prmkit.policy.base import SamplingParams
from prmkit.schema import Problem


@dataclass
class RolloutParams:
    """How episodes are sampled."""

    k: int = 8
    """episodes per problem"""
    max_turns: int = 12
    """most actions per episode"""
    max_action_tokens: int = 32
    """most tokens of one action line"""
    max_tokens: int = 1024
    """most tokens of a whole episode (prompt, actions and observations)"""
    temperature: float = 1.0
    """sampling temperature (0 = greedy)"""
    top_p: float = 1.0
    """nucleus mass"""
    seed: int = 0
    """base seed of every episode's stream"""


@dataclass
class EpisodeTokens:
    """An episode as token ids, with which tokens the policy generated (and their log-probabilities)."""

    ids: list[int] = field(default_factory=list)
    action_mask: list[int] = field(default_factory=list)  # 1 on generated action tokens
    logprobs: list[float] = field(default_factory=list)  # the sampler's log-probability of each generated token, else 0
    turn_ends: list[int] = field(default_factory=list)  # index in `ids` of each action's last token
    context_ends: list[int] = field(default_factory=list)  # len(ids) once each turn's observation is appended
    prompt_len: int = 0

    def extend(self, ids: Sequence[int], generated: bool, logprobs: Sequence[float] | None = None) -> None:
        self.ids += list(ids)
        self.action_mask += [int(generated)] * len(ids)
        self.logprobs += list(logprobs) if logprobs is not None else [0.0] * len(ids)


def episode_seed(seed: int, problem_id: str, k: int, turn: int) -> int:
    """The seed of one turn of one episode: independent of batching and of the problem's position in the list."""
    key = zlib.crc32(problem_id.encode("utf-8"))
    return (((seed * 1_000_003 + key) * 1_009 + k) * 101 + turn) % 2**63


@dataclass
class _Live:
    index: int
    k: int
    problem: Problem
    env: Any
    text: str
    tokens: EpisodeTokens
    turns: list[Turn] = field(default_factory=list)
    finished: bool = False
    stopped: bool = False
    seed_key: str = ""


def _takes_ids(sampler) -> bool:
    """Whether the context is kept as token ids (a local sampler, or a client sending token-id prompts)."""
    return hasattr(sampler, "sample_ids") and getattr(sampler, "token_prompts", True)


def _encode_text(sampler, text: str) -> list[int]:
    if hasattr(sampler, "tokenize"):
        return sampler.tokenize(text, add_special_tokens=False)
    return list(sampler.tokenizer(text, add_special_tokens=False)["input_ids"])


def _start(sampler, problems: Sequence[Problem], make_env: EnvFactory, params: RolloutParams,
           prefixes: Sequence[Sequence[str]] | None = None) -> list[_Live]:
    live = []
    for i, problem in enumerate(problems):
        prefix = list(prefixes[i]) if prefixes else []
        for k in range(params.k):
            env = make_env(problem)
            prompt = env.reset()
            toks = EpisodeTokens()
            if _takes_ids(sampler):
                toks.extend(sampler.encode_prompt(prompt), generated=False)
            toks.prompt_len = len(toks.ids)
            row = _Live(i, k, problem, env, prompt, toks, seed_key=problem.id + (f"#{len(prefix)}" if prefix else ""))
            _replay(sampler, row, prefix)
            live.append(row)
    return live


def _replay(sampler, row: _Live, prefix: Sequence[str]) -> None:
    """Play given actions first (a prefix to continue from): their tokens are context, not generated."""
    for action in prefix:
        obs = row.env.step(action)
        row.turns.append(Turn(action=action, observation=obs.text))
        piece = action + "\n" + (obs.text + "\n" if obs.text else "")
        row.text += piece
        if _takes_ids(sampler):
            row.tokens.extend(_encode_text(sampler, piece), generated=False)
        row.tokens.prompt_len = len(row.tokens.ids)
        if obs.done:
            row.finished = True
            return


def _sample_turn(sampler, rows: list[_Live], params: RolloutParams, turn: int):
    sp = SamplingParams(n=1, max_new_tokens=params.max_action_tokens, temperature=params.temperature,
                        top_p=params.top_p, stop=["\n"])
    seeds = [episode_seed(params.seed, r.seed_key, r.k, turn) for r in rows]
    if not _takes_ids(sampler):
        return [c[0] for c in sampler.sample([r.text for r in rows], sp, seeds=seeds)]
    out, size = [], max(1, getattr(sampler, "batch_size", 64))
    for c in range(0, len(rows), size):
        chunk = rows[c:c + size]
        out += [g[0] for g in sampler.sample_ids([r.tokens.ids for r in chunk], sp, seeds[c:c + size])]
    return out


def _apply(sampler, row: _Live, completion, params: RolloutParams) -> None:
    """Record one sampled action and the environment's answer in `row`."""
    action = completion.text
    ended_by_eos = completion.finish_reason == "stop" and completion.stop is None
    row.tokens.extend(completion.token_ids, generated=True, logprobs=completion.logprobs)
    row.tokens.turn_ends.append(len(row.tokens.ids) - 1)
    newline_missing = completion.stop != "\n"
    if ended_by_eos:  # the policy ended the episode without a finish action
        row.turns.append(Turn(action=action, observation=""))
        row.tokens.context_ends.append(len(row.tokens.ids))
        row.stopped = True
        return
    obs = row.env.step(action)
    row.turns.append(Turn(action=action, observation=obs.text))
    observed = obs.text + "\n" if obs.text else ""
    row.text += action + "\n" + observed
    tail = ("\n" if newline_missing else "") + observed  # what the context gets beyond the generated tokens
    if _takes_ids(sampler) and tail:
        row.tokens.extend(_encode_text(sampler, tail), generated=False)
    row.tokens.context_ends.append(len(row.tokens.ids))
    row.finished = obs.done
    if len(row.tokens.ids) >= params.max_tokens:
        row.stopped = True


def rollout(sampler, problems: Sequence[Problem], make_env: EnvFactory, params: RolloutParams,
            prefixes: Sequence[Sequence[str]] | None = None) -> list[tuple[Episode, EpisodeTokens]]:
    """`params.k` episodes for each problem, in problem-major order (problem 0's k episodes first). With
    `prefixes[i]`, problem i's episodes first replay those actions and continue from there (Monte Carlo
    values of a turn prefix); the replayed turns are in the episode but their tokens are context."""
    from prmkit.progress import progress

    live = _start(sampler, problems, make_env, params, prefixes)
    bar = progress(total=params.max_turns, desc="episodes: turns", leave=False)
    for turn in range(params.max_turns):
        rows = [r for r in live if not r.finished and not r.stopped]
        if not rows:
            break
        for row, completion in zip(rows, _sample_turn(sampler, rows, params, turn)):
            _apply(sampler, row, completion, params)
        bar.update(1)
    bar.close()
    out = []
    for r in live:
        last = r.turns[-1].action if r.finished and r.turns else None
        answer = last[2:] if last and last.startswith("A:") else None
        out.append((Episode(problem_id=r.problem.id, prompt=r.problem.prompt, turns=r.turns, finished=r.finished,
                            answer=answer, meta={"k": r.k}), r.tokens))
    return out


def play_episodes(sampler, task, problems: Sequence[Problem],
                  params: RolloutParams) -> tuple[list[Episode], list]:
    """K episodes per problem (`rollout`), each graded by the environment task: `outcome`, its problem's index
    in `meta["group"]` and, where the task gives turn gold, each turn's `gold` and the episode's `first_error`
    (index of the first wrong turn, -1 for none), and the task's optional per-turn extras
    (`attach_turn_extras`). Returns (episodes, their EpisodeTokens)."""
    episodes, tokens = [], []
    for g, (ep, toks) in enumerate(rollout(sampler, problems, task.make_env, params)):
        problem = problems[g // params.k]
        ep.outcome = task.outcome(problem, ep)
        ep.meta["group"] = g // params.k
        if task.gold is not None:
            gold = task.gold(problem, [t.action for t in ep.turns])
            for turn, gt in zip(ep.turns, gold):
                turn.gold = gt
            ep.first_error = next((i for i, gt in enumerate(gold) if gt.get("wrong")), -1)
        attach_turn_extras(task, problem, ep)
        episodes.append(ep)
        tokens.append(toks)
    return episodes, tokens


def attach_turn_extras(task, problem, episode: Episode) -> None:
    """The environment's optional per-turn extras into `episode.meta`: the agent's own judgements
    (`EnvTask.judgements`) and the relevance of each observation (`EnvTask.relevance`)."""
    if task.judgements is not None:
        episode.meta["judgements"] = task.judgements(problem, [t.action for t in episode.turns])
    if task.relevance is not None:
        episode.meta["relevance"] = task.relevance(problem, episode)
