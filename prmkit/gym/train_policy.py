"""Train the gym's tiny policy from scratch: a Llama-style char LM on worked chain solutions.

Reproducible from a seed (fixed number of steps, seeded data stream, seeded init); checkpoints
every `save_every` steps and resumes from the last one when rerun with the same output dir. Its
training loop (`train_char_lm`, with `pad_rows`, `save_policy` and `lm.schedule.warmup_cosine`) is also the one of
hopgym's agent policy (`prmkit.agents.hopgym.train_policy`).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from prmkit.gym.task import GymConfig, sample_chain, split_config, training_text
from prmkit.lm.schedule import warmup_cosine

SHIPPED_POLICY_DIR = Path(__file__).parent / "checkpoint"


@dataclass
class TrainPolicyConfig:
    """Supervised training of the gym policy on exact worked solutions."""

    out: str = "runs/gym-policy"
    """output directory (Hugging Face model dir + train log)"""
    seed: int = 0
    """seed of initialisation and data stream"""
    steps: int = 725
    """optimizer steps"""
    batch_size: int = 64
    """sequences per step"""
    lr: float = 3e-3
    """peak learning rate (linear warmup, cosine decay)"""
    warmup: int = 100
    """warmup steps"""
    hidden_size: int = 96
    """model width"""
    num_layers: int = 3
    """transformer blocks"""
    num_heads: int = 4
    """attention heads"""
    min_ops: int = 2
    """shortest training chain"""
    max_ops: int = 10
    """longest training chain (covers the long split)"""
    operand_max: int = 9
    """operand range of the training problems"""
    max_value: int = 99
    """bound of intermediate results in the training problems"""
    ops: str = "+-*"
    """operators of the training problems"""
    save_every: int = 500
    """checkpoint interval (steps), for resume"""
    threads: int = 1
    """torch threads; the shipped checkpoint was trained with 1 (float reductions depend on it), 0 = torch's default"""


def model_config(tokenizer, hidden_size: int, num_layers: int, num_heads: int, max_positions: int = 512):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 3,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
        max_position_embeddings=max_positions, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)


def _batch(rng: random.Random, gym: GymConfig, tokenizer, batch_size: int):
    """One batch of chains of a single length (little padding); loss only on the solution."""
    n = rng.randint(gym.min_ops, gym.max_ops)
    cfg = GymConfig(**{**asdict(gym), "min_ops": n, "max_ops": n})
    seqs, masks = [], []
    for _ in range(batch_size):
        prompt, completion = training_text(sample_chain(rng, cfg))
        p = tokenizer(prompt)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        seqs.append(p + c)
        masks.append([0] * len(p) + [1] * len(c))
    return pad_rows(list(zip(seqs, masks)), tokenizer.pad_token_id)


def pad_rows(rows: list, pad_id: int):
    """(ids, attention, loss mask), each (B, T), right-padded, of (token ids, loss mask) rows."""
    import torch

    T = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)  # (B, T)
    attn = torch.zeros((len(rows), T), dtype=torch.long)  # (B, T)
    loss_mask = torch.zeros((len(rows), T), dtype=torch.bool)  # (B, T)
    for i, (s, m) in enumerate(rows):
        ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
        loss_mask[i, : len(m)] = torch.tensor(m, dtype=torch.bool)
    return ids, attn, loss_mask


def masked_lm_step(model, opt, ids, attn, loss_mask, lr: float):
    """One AdamW step at `lr` on the next-token loss of the masked tokens (gradient norm clipped to 1)."""
    import torch

    for g in opt.param_groups:
        g["lr"] = lr
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]  # (B, T-1, V)
    targets = ids[:, 1:].masked_fill(~loss_mask[:, 1:], -100)  # (B, T-1)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def train_char_lm(model, opt, *, start: int, steps: int, batch_at, lr_at, out: Path, desc: str,
                  save_every: int, checkpoint, tokens_per_s: bool = False) -> None:
    """The training loop of the tiny char-level policies: steps `start..steps-1` on `batch_at(step)`,
    a train_log.jsonl row every 50 steps and at the last (with `tokens_per_s`, the throughput too), and
    `checkpoint(next_step)` every `save_every` steps before the last."""
    from prmkit.progress import progress

    model.train()
    t0, tokens = time.time(), 0
    with open(out / "train_log.jsonl", "a") as log:
        bar = progress(range(start, steps), desc=desc, initial=start, total=steps)
        for step in bar:
            ids, attn, loss_mask = batch_at(step)
            loss = masked_lm_step(model, opt, ids, attn, loss_mask, lr_at(step))
            tokens += int(attn.sum())
            if step % 50 == 0 or step == steps - 1:
                row = {"step": step, "loss": round(loss.item(), 5), "lr": lr_at(step)}
                shown = {"loss": f"{loss.item():.4f}"}
                if tokens_per_s:
                    rate = tokens / max(1e-9, time.time() - t0)
                    row["tokens_per_s"], shown["tok_s"] = round(rate), f"{rate:.0f}"
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(**shown)
            if (step + 1) % save_every == 0 and step + 1 < steps:
                checkpoint(step + 1)


def save_policy(model, tokenizer, out: Path, ckpt: Path) -> Path:
    """The trained policy as a Hugging Face model dir (with its generation config and tokenizer); the
    resume checkpoint is removed once it is saved."""
    from transformers import GenerationConfig

    model.eval()
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if ckpt.exists():
        ckpt.unlink()
    return out


def run(cfg: TrainPolicyConfig) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    from prmkit.gym.tokenizer import build_char_tokenizer
    from prmkit.rundir import check_resume, record_config

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    ckpt = out / "train_state.pt"
    check_resume(out, cfg, has_work=ckpt.exists(), ignore=("out", "save_every"), name="train_config.json")
    tokenizer = build_char_tokenizer()
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(model_config(tokenizer, cfg.hidden_size, cfg.num_layers, cfg.num_heads))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.01)
    rng = random.Random(cfg.seed)
    gym = split_config("train", min_ops=cfg.min_ops, max_ops=cfg.max_ops, operand_max=cfg.operand_max,
                       max_value=cfg.max_value, ops=cfg.ops)
    start = _resume(ckpt, model, opt, rng) if ckpt.exists() else 0
    record_config(out, cfg, name="train_config.json")
    train_char_lm(model, opt, start=start, steps=cfg.steps,
                  batch_at=lambda step: _batch(rng, gym, tokenizer, cfg.batch_size),
                  lr_at=lambda step: warmup_cosine(step, cfg.lr, cfg.warmup, cfg.steps), out=out, desc="train policy",
                  save_every=cfg.save_every, checkpoint=lambda step: _checkpoint(ckpt, model, opt, rng, step),
                  tokens_per_s=True)
    return save_policy(model, tokenizer, out, ckpt)


def _checkpoint(ckpt: Path, model, opt, rng: random.Random, step: int) -> None:
    """Model, optimizer, data stream, global RNGs and the next step."""
    from prmkit.rundir import rng_state, save_checkpoint

    version, internal, gauss = rng.getstate()
    save_checkpoint({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng_state(),
                     "data_rng": {"version": version, "state": list(internal), "gauss": gauss}, "step": step}, ckpt)


def _resume(ckpt: Path, model, opt, rng: random.Random) -> int:
    """Restore what `_checkpoint` saved; returns the step to continue from."""
    from prmkit.rundir import load_checkpoint, set_rng_state

    state = load_checkpoint(ckpt)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    rng.setstate((state["data_rng"]["version"], tuple(state["data_rng"]["state"]), state["data_rng"]["gauss"]))
    set_rng_state(state["rng"])
    return state["step"]
