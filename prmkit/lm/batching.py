"""Batching step encodings for one forward pass: length-sorted batches and right padding.

Shared by every scorer and trainer that reads step-end positions (discriminative and implicit PRMs,
their training loops): traces are grouped by similar length (longest first) to limit padding, and
right-padded with position ids 0..L-1, so under causal attention a row's outputs do not depend on
its batch neighbours.
"""

from __future__ import annotations

from typing import Sequence

from prmkit.steps import StepEncoding


def pad_batch(encodings: Sequence[StepEncoding], pad_id: int):
    """Right-pad encodings: input_ids (B,T), attention_mask (B,T), step_ends (B,S) with -1 padding."""
    import torch

    T = max(len(e.input_ids) for e in encodings)
    S = max(len(e.step_ends) for e in encodings)
    ids = torch.tensor([list(e.input_ids) + [pad_id] * (T - len(e.input_ids)) for e in encodings])       # (B,T)
    attn = torch.tensor([[1] * len(e.input_ids) + [0] * (T - len(e.input_ids)) for e in encodings])     # (B,T)
    ends = torch.tensor([list(e.step_ends) + [-1] * (S - len(e.step_ends)) for e in encodings])          # (B,S)
    return ids, attn, ends


def prompt_lengths(encodings: Sequence[StepEncoding]):
    """(B,) long tensor of each encoding's prompt length."""
    import torch

    return torch.tensor([e.prompt_len for e in encodings], dtype=torch.long)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), to limit padding."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
