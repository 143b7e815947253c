"""Step segmentation: positions read for each step, for every tokenizer kind."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prmkit.errors import InputError
from prmkit.steps import encode_steps, join_steps, split_steps, step_end_positions_joint

GYM_ALPHABET = "0123456789+-*=:QA "
ASCII = "abcdefghijklmnopqrstuvwxyzABC0123456789 +-*/=.,:$()'"


def steps_strategy(alphabet: str):
    step = st.text(alphabet=alphabet, min_size=1, max_size=12).filter(lambda s: s.strip())
    return st.lists(step, min_size=1, max_size=6)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_split_join_by_hand():
    assert split_steps("a=1\n\nb=2\nA:3\n") == ["a=1", "b=2", "A:3"]
    assert split_steps("x\n\ny\n\n", sep="\n\n") == ["x", "y"]
    assert join_steps(["a", "b"], sep="\n\n") == "a\n\nb"


def _check_segment(tok, prompt, steps, tag=None):
    enc = encode_steps(tok, prompt, steps, sep="\n", step_tag=tag)
    assert len(enc.step_ends) == len(steps)
    assert enc.step_ends == sorted(enc.step_ends) and len(set(enc.step_ends)) == len(steps)
    for step, pos in zip(steps, enc.step_ends):
        piece = tok.decode([enc.input_ids[pos]])
        if tag:
            assert piece == tag
        else:
            assert piece and step.endswith(piece), (step, piece)
    # the whole sequence decodes back to the text (no special tokens lost or added)
    text = tok.decode(enc.input_ids[enc.prompt_len:], skip_special_tokens=False)
    expected = "\n".join(s + (tag or "") for s in steps) + ("\n" if tag else "")
    assert text == expected


def _check_joint(tok, prompt, steps):
    enc = encode_steps(tok, prompt, steps, sep="\n", mode="joint", add_bos=False)
    assert len(enc.step_ends) == len(steps)
    full = prompt + "\n".join(steps)
    end_char, cursor = [], len(prompt)
    for s in steps:
        cursor += len(s)
        end_char.append(cursor - 1)
        cursor += 1
    for c, pos in zip(end_char, enc.step_ends):
        # independent check by decoding: tokens before pos stop before the step's last char,
        # tokens through pos reach past it, and that token holds the step's last character
        before = tok.decode(enc.input_ids[:pos])
        through = tok.decode(enc.input_ids[: pos + 1])
        assert len(before) <= c < len(through), (before, through, c)
        assert full[c] in tok.decode([enc.input_ids[pos]])


@SETTINGS
@given(steps=steps_strategy(GYM_ALPHABET))
def test_char_tokenizer_positions(char_tokenizer, steps):
    _check_segment(char_tokenizer, "Q:1,+2\n", steps)
    _check_joint(char_tokenizer, "Q:1,+2\n", steps)


@SETTINGS
@given(steps=steps_strategy(ASCII))
def test_bpe_positions(bpe_tokenizer, steps):
    _check_segment(bpe_tokenizer, "Question: what is it?\n", steps)
    _check_joint(bpe_tokenizer, "Question: what is it?\n", steps)


@SETTINGS
@given(steps=steps_strategy(ASCII))
def test_bpe_with_separator_token(bpe_tag_tokenizer, steps):
    assert len(bpe_tag_tokenizer("<extra_0>", add_special_tokens=False)["input_ids"]) == 1
    _check_segment(bpe_tag_tokenizer, "Question: what is it?\n", steps, tag="<extra_0>")


def test_positions_in_generated_ids(char_tokenizer):
    prompt_ids = char_tokenizer("Q:1,+2\n")["input_ids"]
    completion = "1+2=3\nA:3"
    ids = prompt_ids + char_tokenizer(completion, add_special_tokens=False)["input_ids"]
    pos = step_end_positions_joint(char_tokenizer, ids, split_steps(completion), start=len(prompt_ids))
    # by hand: "1+2=3" ends 5 chars into the completion, "A:3" at its last char
    assert pos == [len(prompt_ids) + 4, len(ids) - 1]


def test_empty_steps_rejected(char_tokenizer):
    with pytest.raises(InputError, match="steps"):
        encode_steps(char_tokenizer, "Q", [])
    with pytest.raises(InputError, match=r"steps\[1\]"):
        encode_steps(char_tokenizer, "Q", ["1", ""])


def test_resolve_device(monkeypatch):
    import torch

    from prmkit.errors import InputError
    from prmkit.lm import resolve_device

    monkeypatch.delenv("PRMKIT_DEVICE", raising=False)
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("") == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("PRMKIT_DEVICE", "cpu")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(InputError, match="device"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")
