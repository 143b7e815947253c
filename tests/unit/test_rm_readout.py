"""Each readout registry entry, on a tiny randomly initialised model of that family's architecture and
a tokenizer built here with the right special tokens: the right positions are read, and the scores
equal the head's output there, computed independently from the full forward pass."""

from __future__ import annotations

import pytest
import torch

from prmkit.rewards.discriminative import DiscriminativePRM
from prmkit.rewards.readout import READOUTS, CachedTokenizer, get_readout
from prmkit.steps import encode_steps
from tests.conftest import build_bpe_tokenizer

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA3 = ("{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}"
          "<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
          "{% endif %}")
PROMPT = "Janet sells 16 - 3 - 4 = 9 duck eggs."
STEPS = ["She makes 9 * 2 = 18.", "The answer is 18."]


def _tiny(cls_name: str, tok, **extra):
    import transformers

    cfg_cls = getattr(transformers, cls_name.replace("ForTokenClassification", "Config").replace("ForCausalLM", "Config"))
    cfg = cfg_cls(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  pad_token_id=tok.pad_token_id, **extra)
    torch.manual_seed(0)
    return getattr(transformers, cls_name)(cfg).eval()


def _full_logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]                 # (T,C)


def test_trl_reads_the_separator_after_every_step(char_tokenizer):
    model = _tiny("LlamaForTokenClassification", char_tokenizer, num_labels=2)
    rm = DiscriminativePRM(model, char_tokenizer, readout="trl")
    prompt, steps = "Q:7,+3,*2\n", ["7+3=10", "10*2=20", "A:20"]
    enc = rm.encode(prompt, steps)
    # TRL: BOS + prompt + (step + sep) per step; the label sits on the separator's last token
    text = "".join(char_tokenizer.convert_ids_to_tokens(enc.input_ids[1:]))
    assert text == prompt + "".join(s + "\n" for s in steps)
    assert [char_tokenizer.convert_ids_to_tokens(enc.input_ids[e]) for e in enc.step_ends] == ["\n"] * 3
    assert enc.step_ends == [len(prompt) + len("7+3=10\n"), len(prompt) + len("7+3=10\n10*2=20\n"),
                             len(prompt) + len("7+3=10\n10*2=20\nA:20\n")]
    logits = _full_logits(model, enc.input_ids)
    expect = torch.softmax(logits[enc.step_ends], -1)[:, 1]
    assert rm.score([prompt], [steps])[0] == pytest.approx(expect.tolist(), abs=1e-6)


def test_token_classification_reads_each_steps_last_token(bpe_tokenizer):
    model = _tiny("LlamaForTokenClassification", bpe_tokenizer, num_labels=2)
    rm = DiscriminativePRM(model, bpe_tokenizer, readout="token-classification")
    enc = rm.encode(PROMPT, STEPS)
    ref = encode_steps(bpe_tokenizer, PROMPT, STEPS, sep="\n")
    assert enc == ref
    assert bpe_tokenizer.decode(enc.input_ids[: enc.step_ends[0] + 1]).endswith("18.")
    logits = _full_logits(model, enc.input_ids)
    assert rm.score([PROMPT], [STEPS])[0] == pytest.approx(torch.softmax(logits[enc.step_ends], -1)[:, 1].tolist(), abs=1e-6)


def test_math_shepherd_reads_plus_minus_at_the_tag():
    tok = build_bpe_tokenizer(special=["ки"])
    model = _tiny("MistralForCausalLM", tok)
    rm = DiscriminativePRM(model, tok, readout="math-shepherd")
    enc = rm.encode(PROMPT, STEPS)
    tag = tok.convert_tokens_to_ids("ки")
    assert enc.step_ends == [i for i, t in enumerate(enc.input_ids) if t == tag]
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    logits = _full_logits(model, enc.input_ids)[enc.step_ends]                # (S,V)
    expect = torch.softmax(logits[:, [plus, minus]], -1)[:, 0]
    assert rm.score([PROMPT], [STEPS])[0] == pytest.approx(expect.tolist(), abs=1e-5)


def test_qwen_prm_reads_the_two_class_head_at_extra_0():
    tok = build_bpe_tokenizer(special=["<extra_0>", "<|im_start|>", "<|im_end|>"])
    tok.chat_template = CHATML
    model = _tiny("Qwen2ForTokenClassification", tok, num_labels=2)
    rm = DiscriminativePRM(model, tok, readout="qwen2.5-math-prm")
    enc = rm.encode(PROMPT, STEPS)
    extra = tok.convert_tokens_to_ids("<extra_0>")
    assert enc.step_ends == [i for i, t in enumerate(enc.input_ids) if t == extra]
    assert len(enc.step_ends) == len(STEPS)
    text = tok.decode(enc.input_ids)
    assert text.startswith("<|im_start|>system\nPlease reason step by step")
    assert "<|im_start|>assistant\n" + STEPS[0] + "<extra_0>" + STEPS[1] + "<extra_0>" in text
    logits = _full_logits(model, enc.input_ids)
    assert rm.score([PROMPT], [STEPS])[0] == pytest.approx(torch.softmax(logits[enc.step_ends], -1)[:, 1].tolist(), abs=1e-6)


def test_rlhflow_reads_where_the_assistant_plus_is_predicted():
    tok = build_bpe_tokenizer(special=["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"])
    tok.chat_template = LLAMA3
    model = _tiny("LlamaForCausalLM", tok)
    rm = DiscriminativePRM(model, tok, readout="rlhflow")
    enc = rm.encode(PROMPT, STEPS)
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    # the token after each read position is the assistant's '+' answer, closed by <|eot_id|>
    assert [enc.input_ids[e + 1] for e in enc.step_ends] == [plus, plus]
    assert [enc.input_ids[e + 2] for e in enc.step_ends] == [eot, eot]
    assert tok.decode(enc.input_ids).count("<|start_header_id|>user") == len(STEPS)
    logits = _full_logits(model, enc.input_ids)[enc.step_ends]
    expect = torch.softmax(logits[:, [plus, minus]], -1)[:, 0]
    assert rm.score([PROMPT], [STEPS])[0] == pytest.approx(expect.tolist(), abs=1e-5)


def test_registry_names_errors_and_round_trip():
    assert {"trl", "math-shepherd", "qwen2.5-math-prm", "rlhflow"} <= set(READOUTS)
    r = READOUTS["math-shepherd"]
    assert get_readout(r.to_dict()) == r
    with pytest.raises(ValueError, match="unknown readout 'nope'"):
        get_readout("nope")
    with pytest.raises(ValueError, match="head"):
        get_readout({**r.to_dict(), "head": "regression"})


def test_cached_tokenizer_gives_the_tokenizers_own_ids(bpe_tag_tokenizer, char_tokenizer):
    for tok in (bpe_tag_tokenizer, char_tokenizer):
        cached = CachedTokenizer(tok)
        cached.prefetch([PROMPT] + STEPS)
        for tag in (None, "<extra_0>" if tok is bpe_tag_tokenizer else None):
            assert encode_steps(cached, PROMPT, STEPS, step_tag=tag) == encode_steps(tok, PROMPT, STEPS, step_tag=tag)
