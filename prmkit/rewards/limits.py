"""Sequence-length limits of reward models: a sequence longer than the limit (`--max-length`, by default
the model's context, `config.max_position_embeddings`) is truncated in training or refused, never run
as one giant allocation (a 10 MB step would otherwise ask for tens of GB).

Truncation follows TRL's PRMTrainer (`input_ids[:max_length]`, labels cut with them): the tokens past
the limit go, and with them the steps read there; an example left with no labelled step is dropped.
Scoring refuses (a score for every step is the protocol), naming the trace and its length.
"""

from __future__ import annotations

from typing import Sequence

from prmkit.errors import InputError
from prmkit.steps import StepEncoding

OVERFLOW = ("truncate", "error")


def context_length(model) -> int:
    """The model's context in tokens (0 when its config does not say)."""
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else 0


def sequence_limit(max_length: int, model) -> int:
    """`max_length` if set (> 0), else the model's context; 0 = no limit known."""
    if max_length < 0:
        raise InputError(f"expected --max-length >= 0 (0 = the model's context), got {max_length}", field="max_length")
    return max_length or context_length(model)


def truncate(enc: StepEncoding, limit: int) -> tuple[StepEncoding, int]:
    """(the encoding cut to its first `limit` tokens, how many steps it keeps): the steps read before
    the cut stay; the cut is right after the last kept read position (later tokens affect no kept read)."""
    if not limit or len(enc.input_ids) <= limit:
        return enc, len(enc.step_ends)
    kept = [e for e in enc.step_ends if e < limit]
    end = kept[-1] + 1 if kept else min(limit, enc.prompt_len)
    return StepEncoding(list(enc.input_ids[:end]), kept, min(enc.prompt_len, end)), len(kept)


def limit_examples(examples: Sequence[tuple], limit: int, overflow: str, file: str | None = None) -> list[tuple]:
    """(encoding, step targets) training examples within `limit` tokens: truncated (targets of the cut steps
    dropped; an example with no known target left is dropped) or, with overflow 'error', refused. Says
    what it cut."""
    if overflow not in OVERFLOW:
        raise InputError(f"expected one of {OVERFLOW}, got {overflow!r}", field="overflow")
    out, cut, lost, dropped = [], 0, 0, 0
    for i, (enc, tg) in enumerate(examples):
        if not limit or len(enc.input_ids) <= limit:
            out.append((enc, tg))
            continue
        if overflow == "error":
            raise InputError(f"{len(enc.input_ids)} tokens, over the limit of {limit} (--max-length or the model's "
                             "context); pass --overflow truncate or a larger --max-length", file=file,
                             line=i + 1, field="steps")
        short, k = truncate(enc, limit)
        cut += 1
        lost += sum(v is not None for v in tg[k:])
        kept_tg = list(tg[:k])
        if any(v is not None for v in kept_tg):
            out.append((short, kept_tg))
        else:
            dropped += 1
    if cut:
        print(f"note: truncated {cut} of {len(examples)} sequences to {limit} tokens (--max-length; {lost} step "
              f"labels cut, {dropped} examples left with none and dropped)")
    return out


def check_lengths(encs: Sequence[StepEncoding], limit: int) -> None:
    """Refuse, before any forward pass, a sequence longer than `limit` tokens (0 = no limit)."""
    if not limit:
        return
    for i, e in enumerate(encs):
        if len(e.input_ids) > limit:
            raise InputError(f"trace {i} is {len(e.input_ids)} tokens, over the limit of {limit} (the model's "
                             "context, or --max-length): shorten its steps or drop it", line=i + 1, field="steps")


def within_limit(encs: Sequence[StepEncoding], limit: int, overflow: str, file: str | None = None) -> list[int]:
    """Indices of the encodings within `limit` tokens, for training on whole responses (an outcome label
    is for the full response, so a longer one is dropped, not cut); overflow 'error' refuses instead."""
    if overflow not in OVERFLOW:
        raise InputError(f"expected one of {OVERFLOW}, got {overflow!r}", field="overflow")
    long = [i for i, e in enumerate(encs) if limit and len(e.input_ids) > limit]
    if long and overflow == "error":
        raise InputError(f"{len(encs[long[0]].input_ids)} tokens, over the limit of {limit} (--max-length or the "
                         "model's context); pass --overflow truncate to drop such responses, or a larger --max-length",
                         file=file, line=long[0] + 1, field="steps")
    if long:
        print(f"note: dropped {len(long)} of {len(encs)} responses longer than {limit} tokens (--max-length)")
    skip = set(long)
    return [i for i in range(len(encs)) if i not in skip]
