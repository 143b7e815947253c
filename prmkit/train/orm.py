"""`prmkit train orm`: an outcome reward model — the PRM architecture and readout trained with ONE label
per trace, the graded outcome, at the last step's read position (the baseline the PRM papers
compare against; `rewards.orm.ORM`). Scored per prefix it gives the "ORM applied per prefix" of the
ProcessBench comparison. With no `--data`, the gym recipe samples the train split (outcomes only).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from prmkit.prompting import PromptOptions
from prmkit.schema import Trace


@dataclass
class TrainORMConfig(PromptOptions):
    """Train an outcome reward model (last-token classifier on graded outcomes)."""

    out: str = "runs/orm"
    """output dir: the model (HF dir + prmkit_rm.json), train_log.jsonl, tb/"""
    data: str = ""
    """graded traces (prmkit JSONL with `outcome`; step labels are ignored); empty: the gym recipe"""
    model: str = ""
    """backbone: local dir or hub id (empty: the shipped gym policy)"""
    readout: str = "trl"
    """readout registry entry (where the score is read)"""
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
    lr: float = 1e-3
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
    aggregation: str = "last"
    """aggregation stored with the model (an ORM's response score is its last step score)"""
    fit_data: str = ""
    """traces with gold first errors to fit the per-prefix ProcessBench threshold: prmkit JSONL or a ProcessBench
    JSON array/JSONL (empty: gym --fit-split, on gym data only)"""
    fit_split: str = "dev"
    """gym split sampled to fit the threshold when --fit-data is empty, on gym data only ('' = no threshold)"""
    fit_problems: int = 300
    """gym problems sampled for threshold fitting"""
    num_problems: int = 200
    """gym recipe: train-split problems"""
    samples: int = 4
    """gym recipe: policy samples per problem"""
    seed: int = 0
    """seed of sampling, shuffling and the new head"""
    threads: int = 1
    """torch threads (0 = torch's default)"""
    save_every: int = 200
    """checkpoint interval in optimizer steps (rerun with the same --out to resume)"""


def run(cfg: TrainORMConfig) -> Path:
    from prmkit.train.data import outcome_target
    from prmkit.train.implicit import _traces
    from prmkit.train.loop import train_loop
    from prmkit.train.lora import enable_gradient_checkpointing
    from prmkit.train.prm import (apply_lora, check_train_resume, fit_and_save, fit_traces_for, load_backbone,
                                  loop_settings, n_known, record_train_config, set_threads, step_examples,
                                  step_loss_fn)

    from prmkit.policy.sample import default_policy
    from prmkit.prompting import check_model_format, set_model_format
    from prmkit.train.inputs import check_train_inputs

    started = time.perf_counter()
    checked = check_train_inputs(cfg, "orm")                 # every input and option, before any model loads
    check_model_format(cfg.resolve_format(cfg.model or default_policy()), cfg.model or default_policy())
    set_threads(cfg.threads)
    out = Path(cfg.out)
    check_train_resume(cfg, out)
    if not cfg.data:
        record_train_config(cfg, out)  # the gym recipe's sampled traces are cached in out/
    traces = checked.traces if cfg.data else _traces(cfg, out)

    def targets(t: Trace, line: int) -> list[float | None]:
        return [None] * (len(t.steps) - 1) + [outcome_target(t, line, cfg.data or None)]

    rm = load_backbone(cfg.model, cfg.readout, cfg.sep, "orm", cfg.seed, cfg.aggregation, device=cfg.device)
    set_model_format(rm, cfg, cfg.model or default_policy())
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(rm.model)
    examples = step_examples(rm, traces, targets, cfg.max_length, cfg.overflow, cfg.data or None)
    if cfg.lora_r:
        apply_lora(rm, cfg.lora_r, cfg.lora_alpha)
    record_train_config(cfg, out)  # inputs and models have loaded: from here on the run directory is written
    last = train_loop(rm.model, examples, step_loss_fn(rm), loop_settings(cfg, "train orm"), items=n_known,
                      lengths=[len(e.input_ids) for e, _ in examples], keep_state=True)
    info = {"train_traces": len(traces), "train_examples": len(examples), "labels": "outcome only",
            "final_train": last}
    path = fit_and_save(rm, cfg, info, out, fit_traces_for(cfg), started)
    print(f"saved ORM to {path} ({json.dumps({k: v for k, v in info.items() if k != 'final_train'})})")
    return path
