"""Data parallelism for `train.loop` under `accelerate launch` (torchrun underneath): N processes make
exactly the optimizer updates of one process with N times the gradient accumulation.

One process (no WORLD_SIZE > 1 in the environment) is the default and imports nothing from here
but `world()`, which returns `World()` and leaves the loop as it was. Under a launcher, an optimizer
batch is the one-process batch of `batch_size * grad_accum * N` examples; its micro-batch m runs on
process m mod N, every loss is divided by the item count of the whole optimizer batch (as in one
process), and before clipping and the step the gradients are summed over the processes
(`accelerate`'s reduce: gloo on CPU, NCCL on GPUs). A parameter no micro-batch reached on any
process keeps no gradient, as in one process, so AdamW skips it there too.

Why not `Accelerator.prepare(model)` (DDP): the trainers' loss functions run the backbone through the
reward-model wrapper (`DiscriminativePRM.step_logits`, which may call the decoder and the LM head
separately; `token_logprobs` for implicit PRMs), and the likelihood feature's fuse layer lives beside
the backbone, so a DDP wrapper would not see every forward pass and would not sync every trainable
parameter. One explicit sum per optimizer step is what DDP does under `no_sync` accumulation, minus
overlapping the communication with the backward pass. FSDP and DeepSpeed shard the parameters and
need every forward through their wrapper, so `check_launch` refuses them before any model loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

UNSUPPORTED = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed",
               "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM"}


@dataclass
class World:
    """Where this process stands: rank, number of processes and the accelerator (None in one process)."""

    rank: int = 0
    size: int = 1
    accelerator: Any = None

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True under a multi-process launcher (accelerate launch --multi_gpu, torchrun): WORLD_SIZE > 1."""
    return int(os.environ.get("WORLD_SIZE", "1") or "1") > 1


def check_launch() -> None:
    """Refuse a sharded launch (FSDP, DeepSpeed, Megatron) before any model loads: the trainers run
    data parallel only (see the module docstring)."""
    from prmkit.errors import InputError

    for var, name in UNSUPPORTED.items():
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes"):
            raise InputError(f"{name} (from the accelerate launch config, {var}) is not supported by prmkit's "
                             "trainers: they run data parallel (DDP-equivalent); launch with "
                             "`accelerate launch --multi_gpu --num_processes N` and no FSDP/DeepSpeed config",
                             field="accelerate launch")


def world() -> World:
    """World() in one process; under a launcher, the accelerate process group (gloo on CPU)."""
    if not launched():
        return World()
    check_launch()
    import torch
    from accelerate import Accelerator

    acc = Accelerator(cpu=not torch.cuda.is_available())
    if acc.num_processes < 2:
        raise RuntimeError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')} but accelerate started "
                           f"{acc.num_processes} process ({acc.distributed_type})")
    return World(acc.process_index, acc.num_processes, acc)


def own_rng(model, seed: int, w: World) -> None:
    """Random draws in training (dropout) cannot follow one process's RNG stream across processes: each
    process draws its own (process r > 0 reseeds from (seed, r); process 0 keeps the one-process stream),
    and it is said when the model has active dropout, since then the updates equal a one-process run
    only in distribution. Without dropout the updates are the same."""
    import torch

    if w.size < 2:
        return
    if w.rank > 0:
        torch.manual_seed(seed * 1_000_003 + w.rank)
    rates = sorted({m.p for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0})
    if rates and w.main:
        from prmkit.resolve import note

        note(f"the model has dropout (p = {', '.join(map(str, rates))}): each of the {w.size} processes draws its "
             "own dropout masks, so the updates equal a one-process run with the same total gradient accumulation "
             "only in distribution (set the dropout to 0 in the model's config for identical updates)")


def sum_gradients(params: list, w: World) -> None:
    """p.grad <- the sum of p.grad over the processes; None where no process has a gradient."""
    import torch

    acc = w.accelerator
    has = acc.reduce(torch.tensor([p.grad is not None for p in params], dtype=torch.float32,
                                  device=acc.device), reduction="sum")
    for p, n in zip(params, has.tolist()):
        if n == 0:
            continue
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        p.grad = acc.reduce(g, reduction="sum").to(p.dtype)


def sum_metrics(loss_total: float, sums: dict, w: World) -> tuple[float, dict]:
    """The loss sum and metric sums over the processes. A process may have had no micro-batch in a
    short last batch (and so no metric keys), hence objects rather than fixed-size tensors."""
    from accelerate.utils import gather_object

    parts = gather_object([(loss_total, sums)])
    total, merged = 0.0, {}
    for lt, s in parts:
        total += lt
        for k, v in s.items():
            merged[k] = merged.get(k, 0.0) + v
    return total, merged


def gather_rng(w: World, state: dict) -> list:
    """Every process's RNG state, in rank order (stored in the checkpoint so each one resumes its own)."""
    from accelerate.utils import gather_object

    return gather_object([state])


def wait(w: World) -> None:
    if w.accelerator is not None:
        w.accelerator.wait_for_everyone()


def finish(w: World) -> None:
    """After the last step: process 0 goes on alone (it saves the model, fits thresholds); the others end."""
    if w.accelerator is None:
        return
    import torch.distributed as dist

    w.accelerator.wait_for_everyone()
    w.accelerator.end_training()
    if dist.is_initialized():
        dist.destroy_process_group()
    if not w.main:
        raise SystemExit(0)
