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
    appears in exactly one row; the plan depends only on the lengths (ties keep input order)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    packs, lo, hi = [], 0, len(order) - 1
    while lo <= hi:
        members, offsets, used = [order[lo]], [0], lengths[order[lo]]
        lo += 1
        while lo <= hi and used + lengths[order[hi]] <= max_tokens:
            members.append(order[hi])
            offsets.append(used)
            used += lengths[order[hi]]
            hi -= 1
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
