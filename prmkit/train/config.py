"""What `prmkit train prm|orm|implicit` share: the trainer options (`TrainerConfig`) and the run
lifecycle around them — checking every input before a model loads, refusing to resume other work,
recording the config, the loop settings, and fitting the threshold and saving at the end.

A trainer's config is `class Train<Kind>Config(PromptOptions, TrainerConfig)`: it redeclares a shared
field only to change its default or its help (the docstring under it), and places its own fields in
`--help` with `CLI_AFTER` (`prmkit.config.cli_fields`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from prmkit.schema import Trace


@dataclass
class TrainerConfig:
    """The options every trainer takes (data, model, optimisation, LoRA, lengths, threshold fit, gym recipe)."""

    out: str = "runs/train"
    """output dir: the model (HF dir + prmkit_rm.json), train_log.jsonl, tb/"""
    data: str = ""
    """graded traces (prmkit JSONL with `outcome`; step labels are ignored); empty: the gym recipe"""
    model: str = ""
    """backbone: local dir or hub id (empty: the shipped gym policy)"""
    sep: str = "\n"
    """step separator"""
    epochs: float = 4.0
    """passes over the data"""
    batch_size: int = 32
    """traces per micro-batch"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    grad_accum: int = 1
    """micro-batches per optimizer step"""
    lr: float = 3e-5
    """peak learning rate (warmup, then cosine decay)"""
    warmup_ratio: float = 0.05
    """share of steps spent warming up"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    lora_r: int = 0
    """LoRA rank (0 = full fine-tuning); merged into the saved model"""
    lora_alpha: int = 16
    """LoRA alpha"""
    max_length: int = 0
    """most tokens per training sequence (0 = the backbone's context, config.max_position_embeddings)"""
    overflow: str = "truncate"
    """a longer sequence: truncate (TRL's PRMTrainer convention: the tokens and step labels past --max-length
    are cut, an example left with no label is dropped, and it is said) or error"""
    gradient_checkpointing: bool = False
    """recompute activations in the backward pass (less memory for long sequences, more compute)"""
    aggregation: str = "min"
    """step-score aggregation stored with the model"""
    fit_data: str = ""
    """traces with gold first errors to fit the ProcessBench threshold on: prmkit JSONL or a ProcessBench JSON
    array/JSONL (empty: gym --fit-split, on gym data only)"""
    fit_split: str = "dev"
    """gym split sampled to fit the threshold when --fit-data is empty, on gym data only ('' = no threshold)"""
    fit_problems: int = 300
    """gym problems sampled for threshold fitting"""
    num_problems: int = 200
    """gym recipe: train-split problems"""
    samples: int = 4
    """gym recipe: policy samples per problem"""
    seed: int = 0
    """seed of sampling and shuffling"""
    threads: int = 1
    """torch threads (0 = torch's default)"""
    save_every: int = 200
    """checkpoint interval in optimizer steps (rerun with the same --out to resume)"""


TRAIN_CONFIG = "train_config.json"
# options a resumed training run may change: where and how fast it runs, and the threshold fit (after training)
RESUME_MAY_CHANGE = ("out", "device", "threads", "workers", "save_every", "fit_data", "fit_split", "fit_problems")
WORK = ("train_state.pt", "work", "train_traces.jsonl", "ref_logprobs.pt")  # what a rerun continues from


def check_train_resume(cfg, out: Path) -> None:
    """Refuse to continue the work in `out` (checkpoint, labelled data, caches) with other data or settings."""
    from prmkit.rundir import check_resume

    check_resume(out, cfg, has_work=any((out / w).exists() for w in WORK), ignore=RESUME_MAY_CHANGE,
                 name=TRAIN_CONFIG)


def record_train_config(cfg, out: Path) -> None:
    from prmkit.rundir import record_config

    record_config(out, cfg, name=TRAIN_CONFIG)


def set_threads(n: int) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


def start_training(cfg, kind: str, gym_recipe) -> tuple:
    """Check every input and option of `train <kind>` (before any model loads), refuse to resume other
    work in `cfg.out`, and read the training traces — or, with no --data, record the config (the
    recipe's cached data in out/ is part of the run) and build them with `gym_recipe(cfg, out)`.
    Returns (cfg with its gym-dependent defaults made explicit, out, traces, start time)."""
    from prmkit.resolve import default_policy
    from prmkit.prompting import check_model_format
    from prmkit.train.inputs import check_train_inputs

    started = time.perf_counter()
    checked = check_train_inputs(cfg, kind)
    cfg = checked.cfg
    check_model_format(cfg.resolve_format(cfg.model or default_policy()), cfg.model or default_policy())
    set_threads(cfg.threads)
    out = Path(cfg.out)
    check_train_resume(cfg, out)
    if not cfg.data:
        record_train_config(cfg, out)
    traces = checked.traces if cfg.data else gym_recipe(cfg, out)
    return cfg, out, traces, started


def sampled_gym_traces(cfg, out: Path) -> list[Trace]:
    """The outcome trainers' gym recipe: `cfg.samples` policy samples of `cfg.num_problems` train-split
    problems, graded, cached in out/train_traces.jsonl (a rerun reads them back)."""
    from prmkit.gym.samples import gym_traces
    from prmkit.schema import read_traces, write_records

    cache = out / "train_traces.jsonl"
    if cache.exists():
        return read_traces(cache)
    traces = gym_traces("train", cfg.num_problems, cfg.samples, cfg.seed, desc="sample train")
    write_records(cache, traces)
    return traces


def prepare_model(rm, cfg) -> None:
    """Store the run's prompt format with the model, and turn on gradient checkpointing if asked."""
    from prmkit.resolve import default_policy
    from prmkit.prompting import set_model_format

    set_model_format(rm, cfg, cfg.model or default_policy())
    if cfg.gradient_checkpointing:
        from prmkit.train.lora import enable_gradient_checkpointing

        enable_gradient_checkpointing(rm.model)


def loop_settings(cfg, desc: str):
    from prmkit.train.loop import LoopSettings

    return LoopSettings(out=Path(cfg.out), seed=cfg.seed, epochs=cfg.epochs, batch_size=cfg.batch_size,
                        grad_accum=cfg.grad_accum, lr=cfg.lr, warmup_ratio=cfg.warmup_ratio,
                        weight_decay=cfg.weight_decay, save_every=cfg.save_every, desc=desc)


def apply_lora(rm, r: int, alpha: int):
    """LoRA adapters on the backbone, the classifier head trained in full (`prmkit.train.lora`)."""
    from prmkit.train.lora import lora_rm

    return lora_rm(rm, r, alpha)


def fit_traces_for(cfg, seed_offset: int = 7) -> list[Trace] | None:
    if cfg.fit_data:
        from prmkit.train.inputs import read_fit_traces

        return read_fit_traces(cfg.fit_data)
    if not cfg.fit_split:
        return None
    from prmkit.gym.samples import gym_traces

    return gym_traces(cfg.fit_split, cfg.fit_problems, cfg.samples, cfg.seed + seed_offset, model="",
                      desc=f"sample {cfg.fit_split}")


def fit_and_save(rm, cfg, traces_info: dict, out: Path, fit_traces: Sequence[Trace] | None, started: float) -> Path:
    """Merge LoRA, fit the ProcessBench threshold on held-out traces, save model + config + metadata,
    then remove the checkpoint: the trained weights stay in `out/train_state.pt` until the model is
    saved, so a failed or killed fit loses no training (a rerun runs no training step, only the fit)."""
    from prmkit.errors import InputError
    from prmkit.train.loop import STATE_FILE

    if hasattr(rm.model, "merge_and_unload"):
        rm.model = rm.model.merge_and_unload()
    meta = {**traces_info, "train_seconds": round(time.perf_counter() - started, 1)}
    if fit_traces:
        from prmkit.evaluate.processbench import fit_model_threshold

        how = (f"the trained weights are kept in {out / STATE_FILE}: rerun the same command to fit the threshold "
               "and save (training is not repeated; --fit-data/--fit-split may change), or pass --fit-data '' "
               "--fit-split '' to save without a threshold")
        try:
            meta["threshold_fit"] = fit_model_threshold(rm, fit_traces, source=cfg.fit_data or f"gym:{cfg.fit_split}")
        except InputError as e:
            raise InputError(f"{e}; {how}") from e
        except Exception as e:
            raise RuntimeError(f"fitting the threshold failed ({type(e).__name__}: {e}); {how}") from e
    rm.save_pretrained(out, extra=meta)
    record_train_config(cfg, out)
    (out / STATE_FILE).unlink(missing_ok=True)
    return out
