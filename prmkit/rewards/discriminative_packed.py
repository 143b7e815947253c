"""A discriminative PRM's scores from packed rows (`DiscriminativePRM.set_packing`, `score --pack-tokens`):
whole traces concatenated into rows of at most `pack_tokens` positions with restarting position ids and no
padding (`lm.packing`). The scores are those of the padded path up to float rounding; before the first
packed forward the model is checked to keep packed sequences apart (a model that ignores position ids
would let each trace read its row neighbours)."""

from __future__ import annotations

from typing import Any

from prmkit.errors import InputError
from prmkit.lm.batching import pad_batch
from prmkit.lm.packing import Pack, pack_row, plan_packs

# largest |log-odds| difference between a trace scored alone and packed behind another that still counts as
# the same score: float32 rounding is ~1e-6; half precision rounds at ~1e-2
_TOLERANCE = {"float32": 1e-3, "float64": 1e-6}
_HALF_TOLERANCE = 0.1


def _packed_logodds(rm: Any, encs, pack: Pack) -> list[list[float]]:
    ids, pos, ends, spans = pack_row(encs, pack)
    dev = rm.device
    lo = rm.step_logits(ids.to(dev), None, ends.to(dev), position_ids=pos.to(dev))[0].float().cpu()  # (S,)
    return [lo[a:b].tolist() for a, b in spans]


def check_keeps_apart(rm: Any, encs) -> bool:
    """Refuse packing for a model that mixes packed sequences: the longest and the shortest trace of `encs`
    are scored alone (padded path) and packed together (longest first, so the short one sits behind it);
    their step log-odds must agree. False when `encs` has no two traces to pack (nothing was checked)."""
    import torch

    lengths = [len(e.input_ids) for e in encs]
    if len(encs) < 2:
        return False
    a, b = max(range(len(encs)), key=lengths.__getitem__), min(range(len(encs)), key=lengths.__getitem__)
    if a == b:                                            # every trace of the same length
        b = next(i for i in range(len(encs)) if i != a)
    dev = rm.device
    alone = []
    for i in (a, b):
        ids, attn, ends = pad_batch([encs[i]], rm.pad_id)
        alone.extend(rm.step_logits(ids.to(dev), attn.to(dev), ends.to(dev))[0].float().cpu().tolist())
    packed = [x for row in _packed_logodds(rm, encs, Pack((a, b), (0, lengths[a]), lengths[a] + lengths[b]))
              for x in row]
    dtype = str(next(rm.model.parameters()).dtype).removeprefix("torch.")
    tol = _TOLERANCE.get(dtype, _HALF_TOLERANCE)
    gap = max((abs(x - y) for x, y in zip(alone, packed)), default=0.0)
    if gap > tol or not torch.isfinite(torch.tensor(packed)).all():
        raise InputError(f"this model ({type(rm.model).__name__}) does not keep packed sequences apart: a trace "
                         f"packed behind another scores up to {gap:.3g} log-odds away from its score alone "
                         f"(tolerance {tol:g} for {dtype}); its attention ignores packed position ids, so "
                         "score it in padded batches (--pack-tokens 0)", field="pack_tokens")
    return True


def score_packed(rm: Any, encs) -> list[list[float]]:
    """P(step is good) for every step of every encoding, from packed rows (one forward pass per row)."""
    import torch

    out: list[list[float]] = [[] for _ in encs]
    with torch.inference_mode():
        if not rm._packing_checked:
            rm._packing_checked = check_keeps_apart(rm, encs)   # checked once two traces come in one call
        for pack in plan_packs([len(e.input_ids) for e in encs], rm.pack_tokens):
            for i, lo in zip(pack.members, _packed_logodds(rm, encs, pack)):
                out[i] = torch.sigmoid(torch.tensor(lo)).tolist()
            rm.stats.tokens_scored += pack.length
    return out


def check_packable(model_dir) -> None:
    """Refuse `--pack-tokens` before any model loads when a saved reward-model dir says it cannot pack: an
    implicit PRM, or a PRM with the likelihood feature (its `prmkit_rm.json`); a dir without one (an
    external PRM read through a readout) and a hub id are checked once loaded (`apply_packing`)."""
    from pathlib import Path

    from prmkit.rewards.rm_config import RM_CONFIG, read_rm_config

    if not Path(model_dir).is_dir():
        return
    saved = read_rm_config(model_dir)
    why = ("an implicit PRM scores through its language model's log-probabilities"
           if saved.get("kind", "prm") not in ("prm", "orm") else
           "its likelihood feature runs a language model on padded batches" if saved.get("loglik") else "")
    if why:
        raise InputError(f"--pack-tokens needs a discriminative PRM or ORM without the likelihood feature: {why}",
                         file=str(Path(model_dir) / RM_CONFIG), field="pack_tokens")


def apply_packing(rm: Any, pack_tokens: int) -> None:
    """`rm.set_packing(pack_tokens)` for a command's `--pack-tokens` (0: nothing to do); an error naming the
    option for a reward model that does not score in padded batches of its own (a server, a checker, an
    implicit PRM)."""
    if pack_tokens < 0:
        raise InputError(f"--pack-tokens must be >= 0, got {pack_tokens}", field="pack_tokens")
    if not pack_tokens:
        return
    if not hasattr(rm, "set_packing"):
        raise InputError(f"--pack-tokens needs a local discriminative PRM or ORM; {type(rm).__name__} scores "
                         "another way", field="pack_tokens")
    rm.set_packing(pack_tokens)
