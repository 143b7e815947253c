"""Ray execution of `prmkit score`: `--workers` actors each load the reward model from its spec (a dir, a hub
id, or a `prmkit serve` URL; with `--servers`, actor i uses the i-th URL in turn) and score whole batches.

The output is byte-identical to the local backend's: a model that batches by length (a local classifier or
implicit PRM) first has its traces encoded by the actors, and the batches are then cut here exactly as the
model cuts them in one process (`length_sorted_batches` over all traces, or with `--pack-tokens` the rows of
`plan_packs`), so every trace is scored in the same padded batch or packed row as locally. Other models are
sent slices of `--batch-size` traces in input order (a server batches requests itself, so what it returns is
as deterministic as the server)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from prmkit.lm.batching import length_sorted_batches
from prmkit.lm.packing import plan_packs
from prmkit.progress import progress
from prmkit.ray_pool import actor_pool
from prmkit.rewards.base import ScorerStats
from prmkit.rewards.limits import check_lengths, sequence_limit


@dataclass
class ScoredBy:
    """What the output and the summary line read from the reward model the actors loaded."""

    aggregation: str
    kind: str
    prompt_format: Any = None
    stats: ScorerStats = field(default_factory=ScorerStats)


class _ScoreActor:
    def __init__(self, cfg, spec, load: Callable):
        """`load(cfg, spec)` loads the reward model (`prmkit.score.load_model`, passed in: this module sits
        below the command that calls it)."""
        os.environ.setdefault("PRMKIT_QUIET", "1")
        self.rm = load(dataclasses.replace(cfg, threads=cfg.threads or 1), spec)

    def describe(self, _=None) -> tuple[ScoredBy, int | None, int, int]:
        """What scored (for the output), the traces per model call (None: the model does not batch), the
        most tokens per sequence (0: none known) and the tokens per packed row (0: padded batches)."""
        rm = self.rm
        limit = 0
        if hasattr(rm, "model") and hasattr(rm, "max_length"):
            limit = sequence_limit(rm.max_length, rm.model)
        return (ScoredBy(rm.aggregation, rm.kind, getattr(rm, "prompt_format", None)),
                getattr(rm, "batch_size", None), limit, getattr(rm, "pack_tokens", 0))

    def lengths(self, pairs) -> list[int] | None:
        """Encoded lengths of (prompt, steps) pairs when the model cuts its batches by length, else None."""
        rm = self.rm
        if not hasattr(rm, "encode_many") or getattr(rm, "kv_store", None) is not None:
            return None
        return [len(e.input_ids) for e in rm.encode_many([p for p, _ in pairs], [list(s) for _, s in pairs])]

    def score(self, batch) -> tuple[list[list[float]], int]:
        """Step scores of a batch, (indices, (prompt, steps) pairs), and the tokens scored for them."""
        _, pairs = batch
        before = self.rm.stats.tokens_scored
        scores = self.rm.score([p for p, _ in pairs], [list(s) for _, s in pairs])
        return scores, self.rm.stats.tokens_scored - before


def batches(lengths: list[int] | None, n: int, batch_size: int, pack_tokens: int = 0) -> list[list[int]]:
    """Index lists, one per model call: the model's own packed rows or length-sorted batches when it has
    lengths, else slices of `batch_size` in input order."""
    if lengths is None:
        return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    if pack_tokens:
        return [list(p.members) for p in plan_packs(lengths, pack_tokens)]
    return length_sorted_batches(lengths, batch_size)


def score_ray(cfg, specs: list, traces: list, load: Callable) -> tuple[list[list[float]], ScoredBy]:
    """Step scores of every trace (input order) and what scored them, over `cfg.workers` Ray actors, each
    loading its reward model with `load(cfg, spec)`."""
    pairs = [(t.prompt, tuple(t.steps)) for t in traces]
    per_actor = -(-len(pairs) // cfg.workers)
    parts = [pairs[i: i + per_actor] for i in range(0, len(pairs), per_actor)]
    out: list[list[float]] = [[] for _ in pairs]
    with actor_pool(_ScoreActor, lambda i: (cfg, specs[i % len(specs)], load), min(cfg.workers, len(parts)),
                    workers=cfg.workers, address=cfg.ray_address) as pool:
        found: list = []
        pool.map("describe", [None], lambda _, d: found.append(d))
        (info, batch_size, limit, pack_tokens), lengths = found.pop(), []
        pool.map("lengths", parts, lambda part, lens: lengths.append(lens))   # encoded where the model is
        lengths = None if None in lengths else [k for lens in lengths for k in lens]
        if lengths is not None:                       # a trace over the limit: refused before any forward pass
            check_lengths([SimpleNamespace(input_ids=range(k)) for k in lengths], limit)
        bar = progress(total=len(pairs), desc="score (ray)")

        def place(batch, result):
            scores, tokens = result
            for i, s in zip(batch[0], scores):
                out[i] = s
            info.stats.tokens_scored += tokens
            bar.update(len(batch[0]))

        work = batches(lengths, len(pairs), batch_size or cfg.batch_size, pack_tokens)
        pool.map("score", [(b, [pairs[i] for i in b]) for b in work], place)
        bar.close()
    return out, info
