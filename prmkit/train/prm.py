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

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from prmkit.prompting import PromptOptions
from prmkit.schema import Trace


@dataclass
class TrainPRMConfig(PromptOptions):
    """Train a discriminative PRM on step labels (hard or soft BCE at each step end)."""

    out: str = "runs/prm"
    """output dir: the model (HF dir + prmkit_rm.json), train_log.jsonl, tb/, train_config.json"""
    data: str = ""
    """labelled traces: prmkit JSONL, TRL stepwise JSONL, a datasets dir or hub id (empty: the gym recipe below)"""
    model: str = ""
    """backbone: local dir or hub id (empty: the shipped gym policy)"""
    readout: str = "trl"
    """readout registry entry (trl, token-classification, math-shepherd, qwen2.5-math-prm, rlhflow)"""
    sep: str = "\n"
    """step separator (overrides the readout's)"""
    train_on_last_step_only: bool = False
    """train only on each trace's last step label (TRL's option)"""
    drop_after_first_negative: bool = True
    """ignore the labels after a trace's first negative (< 0.5) label, as the Qwen "Lessons" MC baseline does"""
    epochs: float = 4.0
    """passes over the data"""
    batch_size: int = 32
    """traces per micro-batch"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    grad_accum: int = 1
    """micro-batches per optimizer step"""
    lr: float = 3e-5
    """peak learning rate (warmup, then cosine decay); 3e-5 chosen on gym dev: larger rates fit the noisy
    mc-hard labels' position prior and lower dev F1 (2e-3: 0.85 -> 0.71 within 37 steps)"""
    warmup_ratio: float = 0.05
    """share of steps spent warming up"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    lora_r: int = 0
    """LoRA rank (0 = full fine-tuning); the adapter is merged into the saved model"""
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
    """step-score aggregation stored with the model (min, prod, last, mean)"""
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
    mc_rollouts: int = 8
    """gym recipe: completions per step prefix for mc-hard labels"""
    workers: int = 1
    """gym recipe: labeling processes (labels do not depend on it)"""
    seed: int = 0
    """seed of sampling, labeling, shuffling and the new head"""
    threads: int = 1
    """torch threads (0 = torch's default)"""
    save_every: int = 200
    """checkpoint interval in optimizer steps (rerun with the same --out to resume)"""
    loglik_feature: Optional[bool] = None
    """add each step's log-likelihood under a frozen causal LM (--loglik-lm) to the head's logit (w*ll + b, trained);
    it loads a second copy of the backbone, so the default is on for gym data only (the gym recipe), off otherwise"""
    loglik_lm: str = ""
    """causal LM of the likelihood feature, same tokenizer (empty: the backbone's own pretrained weights)"""


# --------------------------------------------------------------------------- shared by prm and orm


def load_backbone(model: str, readout: str, sep: str, kind: str, seed: int, aggregation: str,
                  loglik_lm: str | None = None, device: str = ""):
    """A PRM/ORM wrapper around a backbone with a freshly initialised (seeded) 2-class head; with
    `loglik_lm` ('' = the backbone itself), the step log-likelihood feature starts at w = 1, b = 0."""
    import torch

    from prmkit.policy.sample import default_policy
    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.rewards.orm import ORM
    from prmkit.rewards.readout import get_readout
    from prmkit.train.silence import quiet_transformers

    r = dataclasses.replace(get_readout(readout), sep=sep)
    cls = ORM if kind == "orm" else DiscriminativePRM
    kw = {}
    if loglik_lm is not None:
        from prmkit.rewards.implicit import GYM_POLICY

        kw["loglik"] = {"lm": loglik_lm or model or GYM_POLICY, "weight": 1.0, "bias": 0.0}
    torch.manual_seed(seed)
    with quiet_transformers():
        rm = cls.from_pretrained(model or default_policy(), readout=r, aggregation=aggregation, device=device, **kw)
    if loglik_lm is not None:
        zero_new_head(rm.model)
    return rm


def fit_loglik_fuse(rm, examples, batch_size: int = 64) -> dict:
    """Start the likelihood feature's (w, b) at the logistic regression of the known step targets on the
    step log-likelihood (full-batch L-BFGS on the mean BCE), so the zero-initialised head trains on
    calibrated scores. Deterministic; returns the fit."""
    import torch

    from prmkit.rewards.discriminative import pad_batch, prompt_lengths

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

    from prmkit.rewards.discriminative import pad_batch, prompt_lengths
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


def until_first_negative(targets: list[float | None]) -> list[float | None]:
    """Labels up to and including the first one below 0.5; later steps become unknown (None)."""
    out: list[float | None] = []
    seen_negative = False
    for v in targets:
        out.append(None if seen_negative else v)
        seen_negative = seen_negative or (v is not None and v < 0.5)
    return out


def n_known(example) -> int:
    return sum(v is not None for v in example[1])


def apply_lora(rm, r: int, alpha: int):
    """LoRA adapters on the backbone, the classifier head trained in full (`prmkit.train.lora`)."""
    from prmkit.train.lora import lora_rm

    return lora_rm(rm, r, alpha)


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


def fit_traces_for(cfg, seed_offset: int = 7) -> list[Trace] | None:
    if cfg.fit_data:
        from prmkit.train.inputs import read_fit_traces

        return read_fit_traces(cfg.fit_data)
    if not cfg.fit_split:
        return None
    from prmkit.train.data import gym_traces

    return gym_traces(cfg.fit_split, cfg.fit_problems, cfg.samples, cfg.seed + seed_offset, model="",
                      desc=f"sample {cfg.fit_split}")


def loop_settings(cfg, desc: str):
    from prmkit.train.loop import LoopSettings

    return LoopSettings(out=Path(cfg.out), seed=cfg.seed, epochs=cfg.epochs, batch_size=cfg.batch_size,
                        grad_accum=cfg.grad_accum, lr=cfg.lr, warmup_ratio=cfg.warmup_ratio,
                        weight_decay=cfg.weight_decay, save_every=cfg.save_every, desc=desc)


def set_threads(n: int) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


# --------------------------------------------------------------------------- prm


def gym_recipe_traces(cfg, out: Path) -> list[Trace]:
    """Sample the train split and label it with mc-hard labels, in resumable chunks under out/work/."""
    from prmkit.schema import read_traces, write_records
    from prmkit.train.data import gym_traces, mc_hard_labels_chunked

    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    sampled = work / "sampled.jsonl"
    if not sampled.exists():
        write_records(sampled, gym_traces("train", cfg.num_problems, cfg.samples, cfg.seed, desc="sample train"))
    return mc_hard_labels_chunked(read_traces(sampled), k=cfg.mc_rollouts, seed=cfg.seed, work=work,
                                  workers=cfg.workers)


def run(cfg: TrainPRMConfig) -> Path:
    from prmkit.policy.sample import default_policy
    from prmkit.prompting import check_model_format, set_model_format
    from prmkit.train.data import step_targets
    from prmkit.train.loop import train_loop

    from prmkit.train.inputs import check_train_inputs

    started = time.perf_counter()
    checked = check_train_inputs(cfg, "prm")                 # every input and option, before any model loads
    cfg = checked.cfg
    check_model_format(cfg.resolve_format(cfg.model or default_policy()), cfg.model or default_policy())
    set_threads(cfg.threads)
    out = Path(cfg.out)
    check_train_resume(cfg, out)
    if not cfg.data:
        record_train_config(cfg, out)  # the gym recipe's labelled data in out/work/ is part of the run
    traces = checked.traces if cfg.data else gym_recipe_traces(cfg, out)

    def targets(t: Trace, line: int) -> list[float | None]:
        tg = step_targets(t, line, cfg.data or None)
        if cfg.train_on_last_step_only:
            return [None] * (len(tg) - 1) + tg[-1:]
        return until_first_negative(tg) if cfg.drop_after_first_negative else tg

    rm = load_backbone(cfg.model, cfg.readout, cfg.sep, "prm", cfg.seed, cfg.aggregation,
                       loglik_lm=cfg.loglik_lm if cfg.loglik_feature else None, device=cfg.device)
    set_model_format(rm, cfg, cfg.model or default_policy())
    if cfg.gradient_checkpointing:
        from prmkit.train.lora import enable_gradient_checkpointing

        enable_gradient_checkpointing(rm.model)
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
