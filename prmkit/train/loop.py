"""The one training loop every reward-model trainer uses: readable, resumable, with gradient accumulation.

An optimizer step takes `batch_size * grad_accum` examples in `grad_accum` micro-batches of
`batch_size`. Each micro-batch's loss is a SUM over its items (labelled steps, traces or pairs)
divided by the item count of the whole optimizer batch, so the accumulated gradient equals the
gradient of the full-batch mean: 4 micro-batches of 2 give the same update as 1 of 8.

Every `save_every` steps the model, optimizer, step counter and every RNG (dropout's included) go to
`train_state.pt` (tensors and plain data only, temp file + rename); rerunning with the same `out`
resumes there and ends bit-identical to an uninterrupted run. With `keep_state`, the finished
weights are written there too (step = total) and the file stays until the caller has saved its
model, so a kill after training (e.g. during a threshold fit) never loses the training: the rerun
runs no step. Metrics go to `train_log.jsonl` and TensorBoard (`tb/`), and a progress bar shows
loss and examples/s.

Under `accelerate launch --multi_gpu --num_processes N` (torchrun; gloo on CPU) the loop is data
parallel with exactly the updates of one process with `grad_accum * N` (`train.distributed`):
process 0 alone writes the log, TensorBoard, the progress bar and the checkpoints (which hold every
process's RNG), every process resumes from the same checkpoint, and after the last step only
process 0 goes on (to save the model).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from prmkit.lm.schedule import warmup_cosine
from prmkit.train.distributed import (World, finish, gather_rng, own_rng, sum_gradients, sum_metrics, wait,
                                      world)


@dataclass
class LoopSettings:
    """Optimisation settings shared by the trainers (filled from each trainer's CLI config)."""

    out: Path
    seed: int = 0
    epochs: float = 1.0
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    save_every: int = 200
    log_every: int = 10
    desc: str = "train"


def steps_per_epoch(n_examples: int, s: LoopSettings) -> int:
    return max(1, math.ceil(n_examples / (s.batch_size * s.grad_accum)))


def num_steps(n_examples: int, s: LoopSettings) -> int:
    return max(1, math.ceil(steps_per_epoch(n_examples, s) * s.epochs))


def epoch_batches(n_examples: int, epoch: int, s: LoopSettings, lengths: Sequence[int] | None = None) -> list[list[int]]:
    """The optimizer batches of one epoch: a seeded shuffle; with `lengths`, examples of similar
    length are grouped (sorted within windows of 16 batches, then the batch order is shuffled) so
    padding stays small. The batches depend only on (seed, epoch, batch_size * grad_accum)."""
    per_step = s.batch_size * s.grad_accum
    rng = random.Random(s.seed * 100_003 + epoch)
    order = list(range(n_examples))
    rng.shuffle(order)
    if lengths is not None:
        window = per_step * 16
        order = [i for w in range(0, n_examples, window)
                 for i in sorted(order[w: w + window], key=lambda i: lengths[i])]
    batches = [order[i: i + per_step] for i in range(0, n_examples, per_step)]
    if lengths is not None:
        rng.shuffle(batches)
    return batches


def lr_at(step: int, total: int, s: LoopSettings) -> float:
    """Linear warmup over warmup_ratio of the steps, then cosine decay to 0."""
    return warmup_cosine(step, s.lr, max(1, int(total * s.warmup_ratio)), total)


def _keep_log_before(path: Path, start: int) -> None:
    """Keep only the log lines of steps before `start` (atomically); a torn last line is dropped."""
    from prmkit.schema import atomic_write_text

    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] < start:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(x + "\n" for x in kept))


STATE_FILE = "train_state.pt"


def _resume(state_file: Path, model, opt, total: int, n_examples: int, w: World = World(),
            per_step: int = 0) -> tuple[int, dict]:
    """Load a checkpoint into model and optimizer, restore the RNGs; returns the step to start at and
    the last logged metrics."""
    from prmkit.errors import InputError
    from prmkit.rundir import load_checkpoint, set_rng_state

    state = load_checkpoint(state_file)
    if (state.get("total"), state.get("n_examples")) != (total, n_examples):
        raise InputError(f"this checkpoint is of a run with {state.get('n_examples')} examples and "
                         f"{state.get('total')} steps, not {n_examples} and {total}; use a new --out",
                         file=str(state_file))
    was = state.get("examples_per_step")
    if was and per_step and was != per_step and state["step"] < total:
        raise InputError(f"this checkpoint is of a run with optimizer batches of {was} examples, not {per_step} "
                         f"(--batch-size x --grad-accum x processes); launch it as before, or use a new --out",
                         file=str(state_file))
    model.load_state_dict(state["model"])
    if "opt" in state:
        opt.load_state_dict(state["opt"])
    ranks = state.get("rng_ranks") or []
    set_rng_state(ranks[w.rank] if len(ranks) == w.size > 1 else state["rng"])  # each process its own RNG
    return int(state["step"]), dict(state.get("last", {}))


def _checkpoint(state_file: Path, model, opt, step: int, total: int, n_examples: int, last: dict,
                w: World = World(), per_step: int = 0) -> None:
    """Write the checkpoint (process 0; every process reaches this, to hand over its RNG state)."""
    from prmkit.rundir import rng_state, save_checkpoint

    rng = rng_state()
    ranks = gather_rng(w, rng) if w.size > 1 else None
    if w.main:
        state = {"model": model.state_dict(), "step": step, "total": total, "n_examples": n_examples,
                 "rng": rng, "last": last}
        if ranks is not None:
            state["rng_ranks"] = ranks
        if per_step:
            state["examples_per_step"] = per_step
        if opt is not None:
            state["opt"] = opt.state_dict()
        save_checkpoint(state, state_file)
    wait(w)


def train_loop(model, examples: Sequence[Any], loss_fn: Callable, s: LoopSettings,
               items: Callable[[Any], int] = lambda ex: 1, lengths: Sequence[int] | None = None,
               keep_state: bool = False) -> dict:
    """Train `model` on `examples`; returns the last logged metrics.

    loss_fn(micro_examples) -> (loss_sum: scalar tensor, metrics: dict of floats) where loss_sum is
    summed over the micro-batch's items; items(example) counts an example's items (e.g. labelled
    steps), used to turn sums into the optimizer batch's mean; `lengths` (tokens per example)
    turns on length-grouped batches. With `keep_state`, the finished weights stay in
    `out/train_state.pt` (the caller removes it once its model is saved); else the file is removed.
    Under a multi-process launcher, only process 0 returns (the others end after the last step).
    """
    import dataclasses

    import torch

    w = world()
    micro = s.batch_size
    s = dataclasses.replace(s, grad_accum=s.grad_accum * w.size)  # the optimizer batches of one process
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    total, per_epoch = num_steps(len(examples), s), steps_per_epoch(len(examples), s)
    cached: dict[int, list[list[int]]] = {}
    state_file = out / STATE_FILE
    own_rng(model, s.seed, w)                                 # before a resume restores each process's RNG
    per_step = s.batch_size * s.grad_accum                   # every process's micro-batches together
    start, last = (_resume(state_file, model, opt, total, len(examples), w, per_step) if state_file.exists()
                   else (0, {}))
    sinks = _Sinks(out, s.desc, start, total, w.main)
    t0, seen = time.perf_counter(), 0
    model.train()
    for step in sinks.bar:
        batch = [examples[i] for i in _step_batch(cached, step, per_epoch, len(examples), s, lengths)]
        n_items = sum(items(ex) for ex in batch)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, s)
        opt.zero_grad(set_to_none=True)
        loss_total, sums = _accumulate(batch, loss_fn, n_items, micro, w, params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm) if s.max_grad_norm else torch.tensor(0.0)
        opt.step()
        seen += len(batch)
        if step % s.log_every == 0 or step == total - 1:
            last = {"step": step, "loss": loss_total / max(1, n_items), "lr": lr_at(step, total, s),
                    "grad_norm": float(grad_norm), "examples_per_s": seen / max(1e-9, time.perf_counter() - t0),
                    **{k: v / max(1, n_items) for k, v in sums.items()}}
            sinks.write(last)
        if s.save_every and (step + 1) % s.save_every == 0 and step + 1 < total:
            _checkpoint(state_file, model, opt, step + 1, total, len(examples), last, w, per_step)
    sinks.close()
    model.eval()
    finish(w)                                                 # only process 0 goes on from here
    if keep_state:
        if start < total:                                     # the trained weights, before anything else can fail
            _checkpoint(state_file, model, None, total, total, len(examples), last)
    elif state_file.exists():
        state_file.unlink()
    return last


def _step_batch(cached: dict, step: int, per_epoch: int, n: int, s: LoopSettings, lengths) -> list[int]:
    """The example indices of optimizer step `step` (one epoch's batches kept in `cached`)."""
    epoch = step // per_epoch
    if epoch not in cached:
        cached.clear()
        cached[epoch] = epoch_batches(n, epoch, s, lengths)
    return cached[epoch][step % per_epoch]


def _accumulate(batch: list, loss_fn: Callable, n_items: int, micro: int, w: World,
                params: list) -> tuple[float, dict]:
    """Backward over this process's micro-batches of `batch` (micro-batch m runs on process m mod N),
    each loss divided by the whole batch's item count; with N > 1 the gradients and sums are then
    summed over the processes. Returns the loss and metric sums of the whole batch."""
    sums: dict[str, float] = {}
    loss_total = 0.0
    for j, m in enumerate(range(0, len(batch), micro)):
        if j % w.size != w.rank:
            continue
        loss_sum, metrics = loss_fn(batch[m: m + micro])
        (loss_sum / max(1, n_items)).backward()
        loss_total += float(loss_sum.detach())
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    if w.size > 1:
        sum_gradients(params, w)
        return sum_metrics(loss_total, sums, w)
    return loss_total, sums


class _Sinks:
    """The log file, TensorBoard and the progress bar; on a process other than 0, the steps alone."""

    def __init__(self, out: Path, desc: str, start: int, total: int, main: bool):
        from prmkit.progress import progress

        self.main, self.log, self.writer = main, None, None
        if not main:
            self.bar = range(start, total)
            return
        self.writer = _tensorboard(out)
        _keep_log_before(out / "train_log.jsonl", start)      # a resumed run logs its steps again from `start`
        self.log = open(out / "train_log.jsonl", "a")
        self.bar = progress(range(start, total), desc=desc, initial=start, total=total)

    def write(self, last: dict) -> None:
        if not self.main:
            return
        self.log.write(json.dumps(last) + "\n")
        self.log.flush()
        if self.writer is not None:
            for k, v in last.items():
                if k != "step":
                    self.writer.add_scalar(f"train/{k}", v, last["step"])
        self.bar.set_postfix(loss=f"{last['loss']:.4f}")

    def close(self) -> None:
        if not self.main:
            return
        self.bar.close()
        self.log.close()
        if self.writer is not None:
            self.writer.close()


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(out / "tb"))
