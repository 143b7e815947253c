"""The step-classifier trainers' shared pieces (`train prm` and `train orm`): a backbone with a fresh
seeded 2-class head read at each step end, the (encoding, targets) examples within the length limit,
and the summed BCE over the known step targets (`train.losses.bce_step_loss`). A target is a float
in [0, 1] or None (not trained on): prm gives one per step, orm only the last step's (the outcome).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from prmkit.schema import Trace


def load_backbone(model: str, readout: str, sep: str, kind: str, seed: int, aggregation: str,
                  loglik_lm: str | None = None, device: str = ""):
    """A PRM/ORM wrapper around a backbone with a freshly initialised (seeded) 2-class head; with
    `loglik_lm` ('' = the backbone itself), the step log-likelihood feature starts at w = 1, b = 0."""
    import torch

    from prmkit.resolve import default_policy
    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.rewards.orm import ORM
    from prmkit.rewards.readout import get_readout
    from prmkit.train.silence import quiet_transformers

    r = dataclasses.replace(get_readout(readout), sep=sep)
    cls = ORM if kind == "orm" else DiscriminativePRM
    kw = {}
    if loglik_lm is not None:
        from prmkit.rewards.rm_config import GYM_POLICY

        kw["loglik"] = {"lm": loglik_lm or model or GYM_POLICY, "weight": 1.0, "bias": 0.0}
    torch.manual_seed(seed)
    with quiet_transformers():
        rm = cls.from_pretrained(model or default_policy(), readout=r, aggregation=aggregation, device=device, **kw)
    if loglik_lm is not None:
        zero_new_head(rm.model)
    return rm


def zero_new_head(model) -> None:
    """Zero the new classifier head (the last Linear with `num_labels` outputs), so that a PRM with the
    likelihood feature starts as exactly that feature (w * ll + b) and the head only adds what the labels teach."""
    import torch

    n = getattr(model.config, "num_labels", 2)
    heads = [m for _, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m.out_features == n]
    if heads:
        with torch.no_grad():
            heads[-1].weight.zero_()
            if heads[-1].bias is not None:
                heads[-1].bias.zero_()


def step_examples(rm, traces: Sequence[Trace], targets: Callable[[Trace, int], list[float | None]],
                  max_length: int = 0, overflow: str = "truncate", file: str | None = None) -> list:
    """(encoding, targets) per trace with at least one known target, each within `max_length` tokens
    (0 = the model's context; longer ones truncated or refused, `rewards.limits`)."""
    from prmkit.rewards.limits import limit_examples, sequence_limit

    pairs = []
    encs = rm.encode_many([t.prompt for t in traces], [t.steps for t in traces])
    for i, (t, enc) in enumerate(zip(traces, encs)):
        tg = targets(t, i + 1)
        if len(tg) != len(t.steps):
            from prmkit.errors import InputError

            raise InputError(f"expected {len(t.steps)} labels, got {len(tg)}", line=i + 1, field="labels.values")
        pairs.append((enc, tg))
    pairs = limit_examples(pairs, sequence_limit(max_length, rm.model), overflow, file)
    return [(enc, tg) for enc, tg in pairs if any(v is not None for v in tg)]


def step_loss_fn(rm):
    """loss_fn for `train_loop`: summed BCE over the known step targets of a micro-batch."""
    import torch

    from prmkit.lm.batching import pad_batch, prompt_lengths
    from prmkit.train.losses import bce_step_loss

    def loss_fn(micro):
        ids, attn, ends = pad_batch([e for e, _ in micro], rm.pad_id)       # (B,T), (B,T), (B,S)
        targets = torch.zeros(ends.shape)                                    # (B,S)
        known = torch.zeros(ends.shape, dtype=torch.bool)                    # (B,S)
        for i, (_, tg) in enumerate(micro):
            for k, v in enumerate(tg):
                if v is not None:
                    targets[i, k], known[i, k] = float(v), True
        dev = rm.device
        plen = prompt_lengths([e for e, _ in micro]).to(dev)                # (B,)
        logits = rm.step_logits(ids.to(dev), attn.to(dev), ends.to(dev), plen)  # (B,S)
        known = known.to(dev)
        loss = bce_step_loss(logits, targets.to(dev), known, reduction="sum")
        agree = ((logits > 0) == (targets.to(dev) >= 0.5)) & known
        return loss, {"step_accuracy": float(agree.sum())}
    return loss_fn


def n_known(example) -> int:
    return sum(v is not None for v in example[1])
