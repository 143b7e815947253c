"""Packing step encodings into rows without padding (`prmkit score --pack-tokens N`).

A packed row concatenates whole sequences; its position ids restart at 0 at each sequence's first token
and no attention mask is passed. Decoders that build their mask from packed position ids (transformers'
mask utilities for Llama/Qwen2-style models with eager or SDPA attention, flash-attention's
variable-length kernels) then let each token attend only to earlier tokens of its own sequence, so a
sequence's outputs are those of a padded batch and no position is spent on padding. A model that
ignores position ids would mix sequences instead: `rewards.discriminative_packed` checks that once
before it packs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from prmkit.steps import StepEncoding


@dataclass(frozen=True)
class Pack:
    """One packed row: the encodings' indices in row order and where each starts in the row."""

    members: tuple[int, ...]
    offsets: tuple[int, ...]
    length: int


def plan_packs(lengths: Sequence[int], max_tokens: int) -> list[Pack]:
    """Rows of at most `max_tokens` positions: the longest sequence left opens a row, then the shortest ones
    left top it up while they fit (a sequence longer than `max_tokens` gets a row of its own). Every index
    appears in exactly one row, and a row holds its members longest first (ties in input order). Planning
    one row's members again, in that order, gives that row back (a Ray actor handed a row packs it as the
    whole call would have)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    rank = sorted(range(len(lengths)), key=lambda i: -lengths[i])   # stable: ties in input order
    packs, lo, hi = [], 0, len(rank) - 1
    while lo <= hi:
        chosen, used = [lo], lengths[rank[lo]]
        lo += 1
        while lo <= hi and used + lengths[rank[hi]] <= max_tokens:
            chosen.append(hi)
            used += lengths[rank[hi]]
            hi -= 1
        members = [rank[r] for r in sorted(chosen)]
        offsets = [sum(lengths[m] for m in members[:j]) for j in range(len(members))]
        packs.append(Pack(tuple(members), tuple(offsets), used))
    return packs


def pack_row(encodings: Sequence[StepEncoding], pack: Pack):
    """(input_ids (1,T), position_ids (1,T), step_ends (1,S) as row positions, spans): `spans[j]` is the
    (start, end) of member j's step columns in `step_ends`."""
    import torch

    ids, pos, ends, spans = [], [], [], []
    for i, off in zip(pack.members, pack.offsets):
        e = encodings[i]
        ids.extend(e.input_ids)
        pos.extend(range(len(e.input_ids)))
        spans.append((len(ends), len(ends) + len(e.step_ends)))
        ends.extend(off + x for x in e.step_ends)
    return (torch.tensor([ids]), torch.tensor([pos]), torch.tensor([ends], dtype=torch.long), spans)
