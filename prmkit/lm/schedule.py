"""The learning-rate schedule every prmkit trainer uses: linear warmup, then cosine decay to 0."""

from __future__ import annotations

import math


def warmup_cosine(step: int, lr: float, warmup: int, steps: int) -> float:
    """Linear warmup to `lr` over `warmup` steps (step 0 gets lr/warmup), then cosine decay to 0 at `steps`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * frac))
