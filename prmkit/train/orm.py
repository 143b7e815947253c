"""`prmkit train orm`: an outcome reward model — the PRM architecture and readout trained with ONE label
per trace, the graded outcome, at the last step's read position (the baseline the PRM papers
compare against; `rewards.orm.ORM`). Scored per prefix it gives the "ORM applied per prefix" of the
ProcessBench comparison. With no `--data`, the gym recipe samples the train split (outcomes only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from prmkit.prompting import PromptOptions
from prmkit.schema import Trace
from prmkit.train.config import (TrainerConfig, apply_lora, fit_and_save, fit_traces_for, loop_settings, prepare_model,
                                 record_train_config, sampled_gym_traces, start_training)


@dataclass
class TrainORMConfig(PromptOptions, TrainerConfig):
    """Train an outcome reward model (last-token classifier on graded outcomes)."""

    CLI_AFTER: ClassVar[dict[str, tuple[str, ...]]] = {"model": ("readout",)}

    out: str = "runs/orm"
    lr: float = 1e-3
    aggregation: str = "last"
    """aggregation stored with the model (an ORM's response score is its last step score)"""
    fit_data: str = ""
    """traces with gold first errors to fit the per-prefix ProcessBench threshold: prmkit JSONL or a ProcessBench
    JSON array/JSONL (empty: gym --fit-split, on gym data only)"""
    seed: int = 0
    """seed of sampling, shuffling and the new head"""
    readout: str = "trl"
    """readout registry entry (where the score is read)"""


def run(cfg: TrainORMConfig) -> Path:
    from prmkit.train.data import outcome_target
    from prmkit.train.loop import train_loop
    from prmkit.train.classifier import load_backbone, n_known, step_examples, step_loss_fn

    cfg, out, traces, started = start_training(cfg, "orm", sampled_gym_traces)

    def targets(t: Trace, line: int) -> list[float | None]:
        return [None] * (len(t.steps) - 1) + [outcome_target(t, line, cfg.data or None)]

    rm = load_backbone(cfg.model, cfg.readout, cfg.sep, "orm", cfg.seed, cfg.aggregation, device=cfg.device)
    prepare_model(rm, cfg)
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
