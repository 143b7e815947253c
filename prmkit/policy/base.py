"""The Sampler protocol every policy backend implements (Hugging Face, OpenAI-compatible servers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass
class Completion:
    """One sampled continuation of a prompt.

    `token_ids`/`logprobs` cover every generated token (a stop string's tokens included, EOS
    included); `text` is the decoded continuation with the stop string (if any) removed, as the
    OpenAI completions API does. `logprobs` are the model's own log-probabilities (temperature 1,
    no top-p), so they equal teacher-forced log-probabilities of the same tokens.
    """

    text: str
    token_ids: list[int]  # (L,)
    logprobs: list[float]  # (L,)
    steps: list[str]
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    stop: str | None = None  # the stop string that ended it, if any
    top_logprobs: list[dict[int, float]] | None = None
    """with `SamplingParams.top_logprobs = k`: per generated token, the k most likely token ids and their
    log-probabilities (temperature 1, as `logprobs`)"""


@dataclass
class SamplingParams:
    """How to sample: shared by every backend and by the CLI."""

    n: int = 1
    """samples per prompt"""
    max_new_tokens: int = 128
    """most tokens generated per sample"""
    temperature: float = 1.0
    """softmax temperature (0 = greedy)"""
    top_p: float = 1.0
    """nucleus sampling mass"""
    seed: int = 0
    """base seed; prompt i of a call samples from its own stream seeded by (seed, i) unless
    per-prompt seeds are given"""
    stop: list[str] = field(default_factory=list)
    """strings that end a sample (excluded from its text)"""
    ignore_eos: bool = False
    """keep generating past EOS (benchmarks)"""
    top_logprobs: int = 0
    """also return the k most likely tokens' log-probabilities at every generated position (0 = none)"""


@dataclass
class SamplerStats:
    """Work counters: forward tokens are positions run through the model (padding excluded)."""

    forward_tokens: int = 0
    generated_tokens: int = 0
    calls: int = 0


class Sampler(Protocol):
    sep: str
    stats: SamplerStats

    def sample(self, prompts: Sequence[str], params: SamplingParams,
               seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        """`params.n` completions for each prompt. A prompt may end inside a solution (a step
        prefix): its continuations then share the prefix's computation."""
        ...
