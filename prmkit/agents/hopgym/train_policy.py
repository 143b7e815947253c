"""`prmkit agent train-policy`: a tiny char-level agent policy for hopgym, trained from scratch.

It imitates oracle trajectories into which wrong, redundant and hallucinated calls were injected
(`noisy_actions`), so the trained policy makes errors of every kind at every turn position. The
loss is on action tokens only: the prompt and every observation are masked. Batch `s` is drawn
from its own seed `(seed, s)`, so a resumed run sees the same data as an uninterrupted one; the
checkpoint holds tensors and plain numbers only (loaded with `weights_only=True`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from prmkit.agents.env import run_episode
from prmkit.agents.hopgym.task import make_env, make_problem, noisy_actions, world_of

AGENT_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz" + "ACKOPQS" + "()+-*/:= \n"


@dataclass
class AgentPolicyConfig:
    """Train hopgym's tiny agent policy (a Llama-style char LM) on noisy oracle trajectories."""

    out: str = "runs/agent-policy"
    """output directory (model, tokenizer, train_log.jsonl); rerunning with the same --out resumes"""
    seed: int = 0
    """seed of the weights and of every batch"""
    steps: int = 800
    """optimizer steps"""
    batch_size: int = 48
    """episodes per step"""
    lr: float = 3e-3
    """peak learning rate (AdamW, linear warmup, cosine decay)"""
    warmup: int = 80
    """warmup steps"""
    hidden_size: int = 96
    """model width"""
    num_layers: int = 3
    """transformer layers"""
    num_heads: int = 4
    """attention heads"""
    p_error: float = 0.25
    """per-hop probability of an injected wrong, redundant or hallucinated call in the training trajectories"""
    save_every: int = 200
    """steps between resumable checkpoints"""
    init: str = ""
    """start from this saved agent policy (continued training) instead of random weights"""
    threads: int = 1
    """torch CPU threads (0 = torch's default)"""


def episode_text(problem, actions: list[str]) -> tuple[str, list[tuple[str, bool]]]:
    """(prompt, [(piece, is_action)]) of an episode played in its environment: each action with its
    newline is an action piece, each observation with its newline is not."""
    prompt, turns, _ = run_episode(make_env(problem), actions)
    pieces = []
    for t in turns:
        pieces.append((t.action + "\n", True))
        if t.observation:
            pieces.append((t.observation + "\n", False))
    return prompt, pieces


def _example(tokenizer, rng: random.Random, p_error: float) -> tuple[list[int], list[int]]:
    problem = make_problem("train", rng.randrange(10 ** 7))
    world, question = world_of(problem)
    prompt, pieces = episode_text(problem, noisy_actions(world, question, rng, p_error))
    ids = list(tokenizer(prompt)["input_ids"])
    mask = [0] * len(ids)
    for text, is_action in pieces:
        piece = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids += piece
        mask += [int(is_action)] * len(piece)
    return ids, mask


def batch(tokenizer, seed: int, step: int, size: int, p_error: float):
    """Batch `step`: (ids, attention, loss mask), each (B, T), right-padded; a pure function of its arguments."""
    from prmkit.gym.train_policy import pad_rows

    rng = random.Random(seed * 1_000_003 + step)
    return pad_rows([_example(tokenizer, rng, p_error) for _ in range(size)], tokenizer.pad_token_id)


def _save_state(path: Path, model, opt, step: int) -> None:
    from prmkit.rundir import save_checkpoint

    save_checkpoint({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, path)


def _load_state(path: Path, model, opt) -> int:
    from prmkit.rundir import load_checkpoint

    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    return int(state["step"])


def run(cfg: AgentPolicyConfig) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    from prmkit.gym.tokenizer import build_char_tokenizer
    from prmkit.gym.train_policy import model_config, save_policy, train_char_lm
    from prmkit.lm.schedule import warmup_cosine
    from prmkit.rundir import check_resume, record_config

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "train_state.pt"
    tokenizer = build_char_tokenizer(AGENT_CHARS)
    torch.manual_seed(cfg.seed)
    model = (LlamaForCausalLM.from_pretrained(cfg.init) if cfg.init
             else LlamaForCausalLM(model_config(tokenizer, cfg.hidden_size, cfg.num_layers, cfg.num_heads, 1024)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.01)
    check_resume(out, cfg, has_work=ckpt.exists(), ignore=("out", "threads", "save_every"), name="train_config.json")
    start = _load_state(ckpt, model, opt) if ckpt.exists() else 0  # no dropout: the weights and step are the state
    record_config(out, cfg, name="train_config.json")
    train_char_lm(model, opt, start=start, steps=cfg.steps,
                  batch_at=lambda step: batch(tokenizer, cfg.seed, step, cfg.batch_size, cfg.p_error),
                  lr_at=lambda step: warmup_cosine(step, cfg.lr, cfg.warmup, cfg.steps), out=out,
                  desc="train agent policy", save_every=cfg.save_every,
                  checkpoint=lambda step: _save_state(ckpt, model, opt, step))
    return save_policy(model, tokenizer, out, ckpt)
