"""The RewardModel protocol every scorer implements (discriminative PRM, implicit PRM, ORM,
generative verifier, external readouts, remote server, and the gym's exact checker in
`prmkit.gym.checker_rm`).

A reward model scores *steps*: `score(prompts, steps)` returns, for each (prompt, list of steps)
pair, one score per step (higher = more likely right). Search calls it on step prefixes (the
last step may be partial), labeling and evaluation on whole traces. `aggregation` names the
rule (`rewards.aggregate.AGGREGATIONS`) that turns step scores into one response score, and
`response_scores` is the one place that applies it.

Compute accounting: `stats.tokens_scored` counts the token positions run through the model
(padding excluded) and `num_parameters` sizes the model, so FLOPs ~ 2 x params x tokens.
`stats.uncached_tokens` counts what a server with prefix caching (vLLM/SGLang style) would run:
each sequence minus the longest prefix, ending at the prompt or a step end, already scored
(`PrefixCacheCounter`); search compares strategies on that count, as it does the policy's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from prmkit.rewards.aggregate import aggregate
from prmkit.rewards.limits import check_lengths, sequence_limit


@dataclass
class ScorerStats:
    """Work counters of a reward model."""

    tokens_scored: int = 0
    calls: int = 0
    sequences: int = 0
    uncached_tokens: int = 0
    """tokens a prefix-caching server would run (see `PrefixCacheCounter`); 0 when not counted"""


class PrefixCacheCounter:
    """Tokens of each scored sequence that no cached prefix covers (what a prefix-caching server runs).

    A serving stack with prefix caching (SGLang's radix cache, vLLM's block cache) keeps the key/value
    states of prefixes it has run, so a sequence costs only the tokens after its longest cached
    prefix. Here the lookup is at every token position (rolling hashes of the exact token ids), and a
    scored sequence leaves cached its prefixes at the prompt end, at each step end, and at every
    position of its last step (where search candidates branch, e.g. early rejection's partial steps).
    Positions inside earlier steps are not left cached, so the count is never below what a radix
    cache would run. `clear()` starts cold (each search run does); the table is emptied once it holds
    `max_entries` prefixes.
    """

    _MOD = (1 << 61) - 1
    _BASE = 1_000_003

    def __init__(self, max_entries: int = 4_000_000):
        self._seen: set[int] = set()
        self.max_entries = max_entries

    def clear(self) -> None:
        self._seen.clear()

    def new_tokens(self, ids: Sequence[int], boundaries: Sequence[int]) -> int:
        """Uncached tokens of `ids`, which is then cached; `boundaries` are the lengths of its prefixes
        ending at the prompt and at each step end."""
        if len(self._seen) > self.max_entries:
            self._seen.clear()
        n = len(ids)
        h, hashes = 0, [0] * (n + 1)                    # hashes[b] = hash of ids[:b]
        for i, t in enumerate(ids):
            h = (h * self._BASE + int(t) + 1) % self._MOD
            hashes[i + 1] = h
        cached = next((b for b in range(n, 0, -1) if hashes[b] in self._seen), 0)
        inner = sorted(b for b in set(boundaries) if 0 < b < n)
        keep = set(inner) | set(range((inner[-1] if inner else 0) + 1, n + 1))
        self._seen.update(hashes[b] for b in keep)
        return n - cached


class RewardModel(Protocol):
    aggregation: str
    stats: ScorerStats

    @property
    def num_parameters(self) -> int: ...

    def score(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        """Per-step scores for each (prompt, steps) pair; `len(out[i]) == len(steps[i])`."""
        ...


class HFScorerBase:
    """What the reward models over one HF `self.model` share: its device, and encoding (one pair, or a
    checked batch) through the class's own `encode_many(prompts, steps)`."""

    @property
    def device(self):
        return next(self.model.parameters()).device

    def encode(self, prompt: str, steps: Sequence[str]):
        return self.encode_many([prompt], [steps])[0]

    def checked_encodings(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list:
        """`encode_many(prompts, steps)`, with the pairing and every sequence's length checked before any
        forward pass (`self.max_length`, else the model's own limit)."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        encs = self.encode_many(prompts, steps)
        check_lengths(encs, sequence_limit(self.max_length, self.model))
        return encs


def score_traces(rm: RewardModel, traces) -> list[list[float]]:
    """Step scores of prmkit `Trace`s."""
    return rm.score([t.prompt for t in traces], [t.steps for t in traces])


def response_scores(rm: RewardModel, prompts: Sequence[str], steps: Sequence[Sequence[str]],
                    how: str | None = None) -> list[float]:
    """One score per response: the model's step scores aggregated by `how` (default: the model's own rule)."""
    return [aggregate(s, how or rm.aggregation) for s in rm.score(prompts, steps)]

