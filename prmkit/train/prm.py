"""`prmkit train prm`: a discriminative PRM — any HF backbone with a 2-class head read at each step end —
trained with hard or soft BCE on step labels (docs/methods.md), optional LoRA (peft).

Matches TRL 1.13's PRMTrainer where it counts: the `trl` readout puts the separator after every
step and reads the label there; `--train-on-last-step-only`; LoRA; soft labels stay floats.
With no `--data`, the defaults are the shipped gym recipe: the gym policy samples the train split,
`prmkit.label.mc.label_mc` gives mc-hard labels, the model starts from the policy, and the
ProcessBench threshold is fitted on the `dev` split and stored with the model. By default the head
adds to the step log-likelihood under the frozen backbone LM (`--loglik-feature`, see
`prmkit.rewards.discriminative`): (w, b) start at the logistic fit on the training labels and the new
head at zero, then everything trains at a small learning rate (3e-5, chosen on gym dev):

    prmkit train prm --out prmkit/gym/prm_checkpoint      # reproduces the shipped gym PRM
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional, Sequence

from prmkit.prompting import PromptOptions
from prmkit.schema import Trace
from prmkit.train.classifier import load_backbone, n_known, step_examples, step_loss_fn
from prmkit.train.config import (TrainerConfig, apply_lora, fit_and_save, fit_traces_for, loop_settings, prepare_model,
                                 record_train_config, start_training)


@dataclass
class TrainPRMConfig(PromptOptions, TrainerConfig):
    """Train a discriminative PRM on step labels (hard or soft BCE at each step end)."""

    CLI_AFTER: ClassVar[dict[str, tuple[str, ...]]] = {
        "model": ("readout",), "sep": ("train_on_last_step_only", "drop_after_first_negative"),
        "samples": ("mc_rollouts", "workers"), "save_every": ("loglik_feature", "loglik_lm")}

    out: str = "runs/prm"
    """output dir: the model (HF dir + prmkit_rm.json), train_log.jsonl, tb/, train_config.json"""
    data: str = ""
    """labelled traces: prmkit JSONL, TRL stepwise JSONL, a datasets dir or hub id (empty: the gym recipe below)"""
    sep: str = "\n"
    """step separator (overrides the readout's)"""
    lora_r: int = 0
    """LoRA rank (0 = full fine-tuning); the adapter is merged into the saved model"""
    aggregation: str = "min"
    """step-score aggregation stored with the model (min, prod, last, mean)"""
    seed: int = 0
    """seed of sampling, labeling, shuffling and the new head"""
    readout: str = "trl"
    """readout registry entry (trl, token-classification, math-shepherd, qwen2.5-math-prm, rlhflow)"""
    train_on_last_step_only: bool = False
    """train only on each trace's last step label (TRL's option)"""
    drop_after_first_negative: bool = True
    """ignore the labels after a trace's first negative (< 0.5) label, as the Qwen "Lessons" MC baseline does"""
    mc_rollouts: int = 8
    """gym recipe: completions per step prefix for mc-hard labels"""
    workers: int = 1
    """gym recipe: labeling processes (labels do not depend on it)"""
    loglik_feature: Optional[bool] = None
    """add each step's log-likelihood under a frozen causal LM (--loglik-lm) to the head's logit (w*ll + b, trained);
    it loads a second copy of the backbone, so the default is on for gym data only (the gym recipe), off otherwise"""
    loglik_lm: str = ""
    """causal LM of the likelihood feature, same tokenizer (empty: the backbone's own pretrained weights)"""


def fit_loglik_fuse(rm, examples, batch_size: int = 64) -> dict:
    """Start the likelihood feature's (w, b) at the logistic regression of the known step targets on the
    step log-likelihood (full-batch L-BFGS on the mean BCE), so the zero-initialised head trains on
    calibrated scores. Deterministic; returns the fit."""
    import torch

    from prmkit.lm.batching import pad_batch, prompt_lengths

    xs, ys = [], []
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            part = examples[i: i + batch_size]
            encs = [e for e, _ in part]
            ids, attn, ends = pad_batch(encs, rm.pad_id)
            ll = rm.step_loglik(ids.to(rm.device), attn.to(rm.device), ends.to(rm.device),
                                prompt_lengths(encs).to(rm.device)).cpu()          # (B,S)
            for row, (_, tg) in enumerate(part):
                for k, v in enumerate(tg):
                    if v is not None:
                        xs.append(float(ll[row, k]))
                        ys.append(float(v))
    x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
    wb = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([wb], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(wb[0] * x + wb[1], y)
        loss.backward()
        return loss

    opt.step(closure)
    w, b = (float(v) for v in wb.detach())
    with torch.no_grad():
        rm.fuse.weight.fill_(w)
        rm.fuse.bias.fill_(b)
        loss = float(torch.nn.functional.binary_cross_entropy_with_logits(w * x + b, y))
    return {"weight": w, "bias": b, "bce": loss, "steps": len(xs)}


def until_first_negative(targets: list[float | None]) -> list[float | None]:
    """Labels up to and including the first one below 0.5; later steps become unknown (None)."""
    out: list[float | None] = []
    seen_negative = False
    for v in targets:
        out.append(None if seen_negative else v)
        seen_negative = seen_negative or (v is not None and v < 0.5)
    return out


def gym_recipe_traces(cfg, out: Path) -> list[Trace]:
    """Sample the train split and label it with mc-hard labels, in resumable chunks under out/work/."""
    from prmkit.schema import read_traces, write_records
    from prmkit.gym.samples import gym_traces
    from prmkit.train.data import mc_hard_labels_chunked

    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    sampled = work / "sampled.jsonl"
    if not sampled.exists():
        write_records(sampled, gym_traces("train", cfg.num_problems, cfg.samples, cfg.seed, desc="sample train"))
    return mc_hard_labels_chunked(read_traces(sampled), k=cfg.mc_rollouts, seed=cfg.seed, work=work,
                                  workers=cfg.workers)


def run(cfg: TrainPRMConfig) -> Path:
    from prmkit.train.data import step_targets
    from prmkit.train.loop import train_loop

    cfg, out, traces, started = start_training(cfg, "prm", gym_recipe_traces)

    def targets(t: Trace, line: int) -> list[float | None]:
        tg = step_targets(t, line, cfg.data or None)
        if cfg.train_on_last_step_only:
            return [None] * (len(tg) - 1) + tg[-1:]
        return until_first_negative(tg) if cfg.drop_after_first_negative else tg

    rm = load_backbone(cfg.model, cfg.readout, cfg.sep, "prm", cfg.seed, cfg.aggregation,
                       loglik_lm=cfg.loglik_lm if cfg.loglik_feature else None, device=cfg.device)
    prepare_model(rm, cfg)
    examples = step_examples(rm, traces, targets, cfg.max_length, cfg.overflow, cfg.data or None)
    fuse_fit = fit_loglik_fuse(rm, examples) if rm.fuse is not None else None
    if cfg.lora_r:
        apply_lora(rm, cfg.lora_r, cfg.lora_alpha)
    record_train_config(cfg, out)  # inputs and models have loaded: from here on the run directory is written
    last = train_loop(rm.trainable(), examples, step_loss_fn(rm), loop_settings(cfg, "train prm"), items=n_known,
                      lengths=[len(e.input_ids) for e, _ in examples], keep_state=True)
    info = {"train_traces": len(traces), "train_examples": len(examples),
            "train_steps_labelled": sum(n_known(e) for e in examples),
            "labels": _label_method(traces), "final_train": last, "loglik_fuse_init": fuse_fit}
    fit = fit_traces_for(cfg)
    path = fit_and_save(rm, cfg, info, out, fit, started)
    _remove_work(out)
    print(f"saved PRM to {path} ({json.dumps({k: v for k, v in info.items() if k != 'final_train'})})")
    return path


def _remove_work(out: Path) -> None:
    """The labelled data of a finished run is not part of the model dir (rerun to rebuild it); removed
    only after the model and its threshold are saved."""
    import shutil

    shutil.rmtree(out / "work", ignore_errors=True)


def _label_method(traces: Sequence[Trace]) -> str:
    methods = sorted({t.labels.method for t in traces if t.labels is not None})
    return ",".join(methods) or "none"
