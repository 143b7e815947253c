"""Outcome reward model (ORM): a last-token classifier trained on graded outcomes only — the baseline PRMs beat.

It is the discriminative PRM's architecture and readout trained with one label per trace (the
outcome, at the last step's read position; `prmkit train orm`). Because the model is causal, its
score at step k's read position equals scoring the prefix `steps[:k+1]` alone, so the "ORM applied
per prefix" of the ProcessBench comparison costs one forward pass per trace, like the PRM.
"""

from __future__ import annotations

from prmkit.rewards.discriminative import DiscriminativePRM


class ORM(DiscriminativePRM):
    """P(final answer is right | prefix) at every step end; response score = the last one."""

    kind = "orm"

    def __init__(self, model, tokenizer, readout="trl", aggregation: str = "last", **kw):
        super().__init__(model, tokenizer, readout=readout, aggregation=aggregation, **kw)
