"""Training-loop invariants: gradient accumulation 4x2 equals 8x1 (same gradients, same update), and an
interrupted run resumed from its checkpoint ends where the uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.rewards.discriminative import DiscriminativePRM
from prmkit.train.loop import LoopSettings, train_loop
from prmkit.train.prm import n_known, step_loss_fn


def _tiny_prm(char_tokenizer):
    from transformers import LlamaConfig, LlamaForTokenClassification

    cfg = LlamaConfig(vocab_size=len(char_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128, num_labels=2,
                      pad_token_id=char_tokenizer.pad_token_id, classifier_dropout=0.0)
    torch.manual_seed(0)
    return DiscriminativePRM(LlamaForTokenClassification(cfg), char_tokenizer, readout="trl")


def _examples(rm, n: int = 16):
    """Traces with different numbers of labelled steps, so per-micro-batch means would differ from the batch mean."""
    out = []
    for i, p in enumerate(make_split("dev", n)):
        sol = parse_prompt(p.prompt).solution_steps()
        labels: list[float | None] = [1.0] * len(sol)
        if i % 3 == 0:
            labels[-1] = 0.0
        if i % 4 == 1:
            labels[0] = None
        out.append((rm.encode(p.prompt, sol), labels))
    return out


def _run(char_tokenizer, tmp: Path, batch_size: int, grad_accum: int, epochs: float = 1.0, **kw):
    rm = _tiny_prm(char_tokenizer)
    ex = _examples(rm)
    s = LoopSettings(out=tmp, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=1e-2,
                     warmup_ratio=0.0, save_every=kw.pop("save_every", 0), **kw)
    train_loop(rm.model, ex, step_loss_fn(rm), s, items=n_known, lengths=[len(e.input_ids) for e, _ in ex])
    return rm.model


def test_grad_accumulation_4x2_equals_8x1(char_tokenizer, tmp_path):
    # 16 examples, 8 per optimizer step: 2 steps; after the loop, .grad holds the last step's gradient
    a = _run(char_tokenizer, tmp_path / "a", batch_size=4, grad_accum=2, max_grad_norm=0.0)
    b = _run(char_tokenizer, tmp_path / "b", batch_size=8, grad_accum=1, max_grad_norm=0.0)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6, rtol=1e-5), name
        assert torch.allclose(pa, pb, atol=1e-6), name
    c = _run(char_tokenizer, tmp_path / "c", batch_size=2, grad_accum=1, max_grad_norm=0.0)
    assert any(not torch.allclose(pa, pc, atol=1e-4) for pa, pc in zip(a.parameters(), c.parameters()))


def test_resume_after_interruption_ends_where_an_uninterrupted_run_ends(char_tokenizer, tmp_path):
    full = _run(char_tokenizer, tmp_path / "full", batch_size=4, grad_accum=1, epochs=2.0, log_every=1)
    rm = _tiny_prm(char_tokenizer)
    ex = _examples(rm)
    s = LoopSettings(out=tmp_path / "cut", epochs=2.0, batch_size=4, grad_accum=1, lr=1e-2, warmup_ratio=0.0,
                     save_every=3, log_every=1)
    loss_fn, calls = step_loss_fn(rm), {"n": 0}

    def crashing(micro):
        calls["n"] += 1
        if calls["n"] == 5:                                   # during optimizer step 5 (checkpoint after step 3)
            raise KeyboardInterrupt
        return loss_fn(micro)

    with pytest.raises(KeyboardInterrupt):
        train_loop(rm.model, ex, crashing, s, items=n_known, lengths=[len(e.input_ids) for e, _ in ex])
    assert (tmp_path / "cut" / "train_state.pt").exists()
    rm2 = _tiny_prm(char_tokenizer)                           # a fresh process: same init, resumes at step 3
    train_loop(rm2.model, ex, step_loss_fn(rm2), s, items=n_known, lengths=[len(e.input_ids) for e, _ in ex])
    for pa, pb in zip(full.parameters(), rm2.model.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6)
    assert not (tmp_path / "cut" / "train_state.pt").exists()
    # the resumed run's log has each step once, with the uninterrupted run's values
    import json

    def log(d):
        return [json.loads(x) for x in (tmp_path / d / "train_log.jsonl").read_text().splitlines()]

    cut, whole = log("cut"), log("full")
    assert [r["step"] for r in cut] == [r["step"] for r in whole]
    assert all(abs(a["loss"] - b["loss"]) < 1e-5 for a, b in zip(cut, whole))
