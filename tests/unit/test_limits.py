"""Sequence-length limits and gradient checkpointing: truncation by hand, the kept steps' scores equal to
the full sequence's (causal attention), an over-long trace refused before any forward pass in scoring,
and gradient checkpointing giving the same update as plain backprop."""

from __future__ import annotations

import time

import pytest
import torch

from prmkit.errors import InputError
from prmkit.rewards.limits import check_lengths, limit_examples, truncate, within_limit
from prmkit.steps import StepEncoding
from tests.conftest import build_bpe_tokenizer

PROMPT = "Janet sells 16 - 3 - 4 = 9 duck eggs."
STEPS = ["She makes 9 * 2 = 18.", "So the total amount is 18.", "The answer is 18."]


def test_truncate_by_hand():
    enc = StepEncoding(list(range(10)), [3, 6, 9], 2)
    assert truncate(enc, 10) == (enc, 3)
    assert truncate(enc, 8) == (StepEncoding([0, 1, 2, 3, 4, 5, 6], [3, 6], 2), 2)   # cut after the last kept read
    assert truncate(enc, 4) == (StepEncoding([0, 1, 2, 3], [3], 2), 1)
    assert truncate(enc, 3) == (StepEncoding([0, 1], [], 2), 0)                       # no step fits: the prompt


def test_limit_examples_cuts_labels_drops_empty_and_refuses_on_request(capsys):
    a, b = StepEncoding(list(range(10)), [3, 6, 9], 2), StepEncoding(list(range(5)), [2, 4], 1)
    out = limit_examples([(a, [1.0, None, 0.0]), (b, [1.0, 0.0])], 5, "truncate")
    assert out == [(StepEncoding([0, 1, 2, 3], [3], 2), [1.0]), (b, [1.0, 0.0])]
    assert "truncated 1 of 2 sequences to 5 tokens (--max-length; 1 step labels cut" in capsys.readouterr().out
    assert limit_examples([(a, [None, None, 1.0])], 5, "truncate") == []              # no label left: dropped
    with pytest.raises(InputError, match="over the limit of 5") as e:
        limit_examples([(b, [1.0, 0.0]), (a, [1.0, 1.0, 1.0])], 5, "error", file="d.jsonl")
    assert (e.value.file, e.value.line) == ("d.jsonl", 2)
    assert within_limit([a, b], 5, "truncate") == [1]
    with pytest.raises(InputError, match="--overflow"):
        within_limit([a, b], 5, "error")
    check_lengths([a, b], 10)
    with pytest.raises(InputError, match="trace 0 is 10 tokens"):
        check_lengths([a, b], 9)


def _tiny_prm(ctx: int):
    import transformers

    from prmkit.rewards.discriminative import DiscriminativePRM

    tok = build_bpe_tokenizer()
    cfg = transformers.Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=ctx,
                                   pad_token_id=tok.pad_token_id, num_labels=2)
    torch.manual_seed(0)
    return DiscriminativePRM(transformers.Qwen2ForTokenClassification(cfg), tok, readout="trl")


def test_kept_steps_score_as_in_the_full_sequence_and_scoring_refuses_long_traces():
    rm = _tiny_prm(ctx=256)
    enc = rm.encode(PROMPT, STEPS)
    full = rm.score([PROMPT], [STEPS])[0]
    limit = enc.step_ends[1] + 2                                   # the third step's read lies past the limit
    short, k = truncate(enc, limit)
    assert k == 2 and len(short.input_ids) <= limit
    with torch.no_grad():
        logits = rm.model(input_ids=torch.tensor([short.input_ids])).logits[0]          # (T,2)
    p = torch.softmax(logits[short.step_ends], -1)[:, 1].tolist()
    assert p == pytest.approx(full[:2], abs=1e-6)                  # causal: what is kept scores the same
    rm.max_length = limit
    with pytest.raises(InputError, match="over the limit"):
        rm.score([PROMPT], [STEPS])
    small = _tiny_prm(ctx=64)                                      # the model's own context is the default limit
    t = time.perf_counter()
    with pytest.raises(InputError, match="over the limit of 64"):
        small.score([PROMPT], [["She makes 9 * 2 = 18. " * 20000]])   # a huge step: refused, no giant forward
    assert time.perf_counter() - t < 5.0


def test_gradient_checkpointing_gives_the_same_update():
    from prmkit.train.loop import LoopSettings, train_loop
    from prmkit.train.lora import enable_gradient_checkpointing
    from prmkit.train.prm import n_known, step_loss_fn

    weights = []
    for gc in (False, True):
        rm = _tiny_prm(ctx=256)
        if gc:
            enable_gradient_checkpointing(rm.model)
            assert rm.model.is_gradient_checkpointing
        ex = [(rm.encode(PROMPT, STEPS), [1.0, 0.0, 0.0]), (rm.encode(PROMPT, STEPS[:2]), [1.0, 1.0])]
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            train_loop(rm.model, ex, step_loss_fn(rm), LoopSettings(out=d, epochs=2, batch_size=2, lr=1e-2,
                                                                  save_every=0), items=n_known)
        weights.append({k: v.clone() for k, v in rm.model.state_dict().items()})
    moved = _tiny_prm(ctx=256).model.state_dict()
    assert any(not torch.equal(weights[0][k], moved[k]) for k in moved)          # training changed something
    for k in weights[0]:
        assert torch.allclose(weights[0][k], weights[1][k], atol=1e-6), k
