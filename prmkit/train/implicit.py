"""`prmkit train implicit`: an implicit PRM trained from OUTCOME labels only (Yuan et al. 2412.01981).

r(y) = beta * sum_t log(pi(y_t|y_<t) / pi_ref(y_t|y_<t)); CE loss against the graded outcome, or
DPO over (right, wrong) pairs of one problem (Implicit PRM, arXiv 2412.01981; `train.losses`). The reference's
log-probs are computed once, before training, and cached in `out/ref_logprobs.pt`. Step rewards
come for free at scoring time (`rewards.implicit.ImplicitPRM`). With no `--data`, the gym recipe
samples the train split with the shipped policy, which is also the initialisation and reference.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

from prmkit.prompting import PromptOptions
from prmkit.schema import Trace
from prmkit.train.config import (TrainerConfig, apply_lora, fit_and_save, fit_traces_for, loop_settings, prepare_model,
                                 record_train_config, sampled_gym_traces, start_training)

LOSSES = ("ce", "dpo")


@dataclass
class TrainImplicitConfig(PromptOptions, TrainerConfig):
    """Train an implicit PRM (log-ratio of two LMs) from outcome labels only, with the CE or DPO loss."""

    CLI_AFTER: ClassVar[dict[str, tuple[str, ...]]] = {"model": ("ref_model", "loss", "beta"),
                                                       "aggregation": ("step_score",)}

    out: str = "runs/implicit"
    """output dir: the model (HF dir + prmkit_rm.json), ref_logprobs.pt, train_log.jsonl, tb/"""
    model: str = ""
    """policy to start from (empty: the shipped gym policy)"""
    epochs: float = 8.0
    batch_size: int = 32
    """responses (ce) or pairs (dpo) per micro-batch"""
    overflow: str = "truncate"
    """a longer sequence: truncate (an outcome label is for the whole response, so a
    longer response is dropped from training, and it is said) or error"""
    ref_model: str = ""
    """frozen reference (empty: the same as --model; 'none': the "w/o ref" variant, log pi only); same tokenizer"""
    loss: str = "ce"
    """ce (per-response cross-entropy on the outcome) or dpo (right vs wrong pairs of a problem)"""
    beta: float = 0.5
    """beta of the log-ratio reward beta x log(pi / pi_ref)"""
    step_score: str = "q"
    """per-step score: q (cumulative implicit value) or step (that step's own reward), through a sigmoid"""


def cached_ref_logprobs(rm, encs: Sequence, out: Path, batch_size: int = 64) -> list:
    """Reference log-probs of every encoding (list of (len-1,) tensors), computed once, cached on disk."""
    import torch

    from prmkit.lm import token_logprobs
    from prmkit.progress import progress
    from prmkit.lm.batching import length_sorted_batches, pad_batch

    cache = out / "ref_logprobs.pt"
    keys = [tuple(e.input_ids) for e in encs]
    if rm.ref_model is None:
        return [torch.zeros(len(k) - 1) for k in keys]
    if cache.exists():
        from prmkit.rundir import load_checkpoint

        saved = load_checkpoint(cache)
        if saved.get("keys") == keys:
            return saved["logprobs"]
    res: list = [None] * len(encs)
    bar = progress(total=len(encs), desc="reference logprobs")
    with torch.inference_mode():
        for batch in length_sorted_batches([len(k) for k in keys], batch_size):
            ids, attn, _ = pad_batch([encs[i] for i in batch], rm.pad_id)
            lp = token_logprobs(rm.ref_model, ids.to(rm.device), attn.to(rm.device)).cpu()  # (B,T-1)
            for row, i in enumerate(batch):
                res[i] = lp[row, : len(keys[i]) - 1].clone()
            bar.update(len(batch))
    bar.close()
    from prmkit.rundir import save_checkpoint

    save_checkpoint({"keys": keys, "logprobs": res}, cache)
    return res


def _sequence_logratio(rm, encs, refs):
    """Summed policy and reference log-probs over response tokens: two (B,) tensors."""
    import torch

    from prmkit.lm import token_logprobs
    from prmkit.lm.batching import pad_batch
    from prmkit.rewards.implicit import response_mask

    ids, attn, _ = pad_batch(encs, rm.pad_id)                                 # (B,T)
    lp = token_logprobs(rm.model, ids.to(rm.device), attn.to(rm.device))     # (B,T-1)
    ref = torch.zeros_like(lp)                                                # (B,T-1)
    for i, r in enumerate(refs):
        ref[i, : len(r)] = r
    mask, _ = response_mask(encs, ids.shape[1])                               # (B,T-1)
    mask = mask.to(lp.device)
    return lp, ref, mask


def ce_loss_fn(rm, beta: float):
    import torch

    from prmkit.train.losses import implicit_ce_loss

    def loss_fn(micro):
        lp, ref, mask = _sequence_logratio(rm, [e for e, _, _ in micro], [r for _, r, _ in micro])
        labels = torch.tensor([y for _, _, y in micro], dtype=lp.dtype, device=lp.device)  # (B,)
        loss = implicit_ce_loss(lp, ref, mask, labels, beta, reduction="sum")
        r = beta * ((lp - ref) * mask).sum(dim=1)                             # (B,)
        return loss, {"outcome_accuracy": float(((r > 0) == (labels >= 0.5)).sum())}
    return loss_fn


def dpo_loss_fn(rm, beta: float):
    from prmkit.train.losses import dpo_loss

    def loss_fn(micro):
        encs = [c for c, _, _, _ in micro] + [w for _, _, w, _ in micro]
        refs = [rc for _, rc, _, _ in micro] + [rw for _, _, _, rw in micro]
        lp, ref, mask = _sequence_logratio(rm, encs, refs)
        seq = (lp * mask).sum(dim=1)                                          # (2B,)
        seq_ref = (ref * mask).sum(dim=1)                                     # (2B,)
        n = len(micro)
        loss = dpo_loss(seq[:n], seq_ref[:n], seq[n:], seq_ref[n:], beta, reduction="sum")
        margin = (seq[:n] - seq_ref[:n]) - (seq[n:] - seq_ref[n:])
        return loss, {"pair_accuracy": float((margin > 0).sum())}
    return loss_fn


def dpo_pairs(traces: Sequence[Trace], seed: int) -> list[tuple[int, int]]:
    """(right, wrong) index pairs within each problem; problems with only right or only wrong
    responses give none (Implicit PRM, arXiv 2412.01981). Each response is used at most once."""
    groups: dict[str, tuple[list[int], list[int]]] = {}
    for i, t in enumerate(traces):
        right, wrong = groups.setdefault(t.problem_id, ([], []))
        (right if (t.outcome or 0.0) >= 0.5 else wrong).append(i)
    rng = random.Random(seed)
    pairs = []
    for right, wrong in groups.values():
        rng.shuffle(right)
        rng.shuffle(wrong)
        pairs += list(zip(right, wrong))
    return pairs


def build_model(cfg):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prmkit.resolve import default_policy
    from prmkit.rewards.implicit import NO_REF, ImplicitPRM
    from prmkit.rewards.rm_config import GYM_POLICY
    from prmkit.train.silence import quiet_transformers

    path = cfg.model or default_policy()
    ref_name = cfg.ref_model or (cfg.model if cfg.model else GYM_POLICY)
    from prmkit.rewards.rm_config import resolve_ref

    from prmkit.lm import resolve_device

    device = resolve_device(getattr(cfg, "device", ""))
    with quiet_transformers():
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
        ref = (None if ref_name == NO_REF else
               AutoModelForCausalLM.from_pretrained(resolve_ref(ref_name), dtype=torch.float32).to(device))
    return ImplicitPRM(model, ref, tok, beta=cfg.beta, sep=cfg.sep, aggregation=cfg.aggregation,
                       step_score=cfg.step_score, ref_name=ref_name)


def run(cfg: TrainImplicitConfig) -> Path:
    from prmkit.errors import InputError
    from prmkit.rewards.limits import sequence_limit, within_limit
    from prmkit.train.data import outcome_target
    from prmkit.train.loop import train_loop

    if cfg.loss not in LOSSES:
        raise InputError(f"expected one of {LOSSES}, got {cfg.loss!r}", field="loss")
    cfg, out, traces, started = start_training(cfg, "implicit", sampled_gym_traces)
    labels = [outcome_target(t, i + 1, cfg.data or None) for i, t in enumerate(traces)]
    rm = build_model(cfg)
    prepare_model(rm, cfg)
    encs = rm.encode_many([t.prompt for t in traces], [t.steps for t in traces])
    keep = within_limit(encs, sequence_limit(cfg.max_length, rm.model), cfg.overflow, cfg.data or None)
    traces, labels, encs = [traces[i] for i in keep], [labels[i] for i in keep], [encs[i] for i in keep]
    record_train_config(cfg, out)  # inputs and models have loaded: from here on the run directory is written
    refs = cached_ref_logprobs(rm, encs, out)
    examples, loss_fn, lengths = _loss_examples(rm, cfg, traces, encs, refs, labels)
    if cfg.lora_r:
        apply_lora(rm, cfg.lora_r, cfg.lora_alpha)
    last = train_loop(rm.model, examples, loss_fn, loop_settings(cfg, f"train implicit ({cfg.loss})"),
                      lengths=lengths, keep_state=True)
    info = {"train_traces": len(traces), "train_examples": len(examples), "loss": cfg.loss,
            "labels": "outcome only", "final_train": last}
    path = fit_and_save(rm, cfg, info, out, fit_traces_for(cfg), started)
    print(f"saved implicit PRM to {path} ({json.dumps({k: v for k, v in info.items() if k != 'final_train'})})")
    return path


def _loss_examples(rm, cfg, traces, encs, refs, labels) -> tuple:
    """The training examples of `--loss`, its loss_fn for `train_loop`, and each example's length:
    (encoding, reference log-probs, outcome) per response for ce; (right, its refs, wrong, its refs)
    per DPO pair of one problem for dpo."""
    from prmkit.errors import InputError

    if cfg.loss == "ce":
        examples = [(e, r, y) for e, r, y in zip(encs, refs, labels)]
        return examples, ce_loss_fn(rm, cfg.beta), [len(e.input_ids) for e in encs]
    pairs = dpo_pairs(traces, cfg.seed)
    if not pairs:
        raise InputError("DPO needs problems with both right and wrong responses; found none", field="outcome")
    examples = [(encs[c], refs[c], encs[w], refs[w]) for c, w in pairs]
    return examples, dpo_loss_fn(rm, cfg.beta), [len(encs[c].input_ids) + len(encs[w].input_ids) for c, w in pairs]
