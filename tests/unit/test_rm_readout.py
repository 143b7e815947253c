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


CUSTOM_HEAD_CODE = '''
from torch import nn
from transformers import Qwen2Model, Qwen2PreTrainedModel


class TinyCustomPRM(Qwen2PreTrainedModel):
    """A backbone with a two-layer scoring head, the layout Qwen2.5-Math-PRM ships as custom code."""

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size), nn.ReLU(),
                                   nn.Linear(config.hidden_size, 2))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kw):
        h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return (self.score(h),)
'''


def _custom_head_prm(tmp_path):
    """Save a tiny PRM whose head exists only as the checkpoint's own code; returns the in-memory model."""
    import importlib.util
    import sys

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "modeling_tiny_prm.py").write_text(CUSTOM_HEAD_CODE)
    spec = importlib.util.spec_from_file_location("modeling_tiny_prm", tmp_path / "modeling_tiny_prm.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["modeling_tiny_prm_fixture"] = mod
    spec.loader.exec_module(mod)
    tok = build_bpe_tokenizer(special=["<extra_0>", "<|im_start|>", "<|im_end|>"])
    tok.chat_template = CHATML
    base = _tiny("Qwen2ForTokenClassification", tok, num_labels=2)
    torch.manual_seed(1)
    model = mod.TinyCustomPRM(base.config).eval()
    model.config.auto_map = {"AutoModel": "modeling_tiny_prm.TinyCustomPRM"}
    model.config.architectures = ["TinyCustomPRM"]
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return model


def test_custom_code_head_needs_trust_remote_code_and_is_never_read_as_random(tmp_path):
    """A PRM whose head exists only as the checkpoint's own code: loading it as a stock token classifier
    would start a random head; `load_reward_model` refuses, and with trust_remote_code reads the real head."""
    from prmkit.errors import InputError
    from prmkit.rewards import load_reward_model

    model = _custom_head_prm(tmp_path)
    with pytest.raises(InputError, match="trust_remote_code") as e:
        load_reward_model(str(tmp_path), readout="qwen2.5-math-prm", device="cpu")
    assert "score.weight" in str(e.value) and str(tmp_path) in str(e.value)
    rm = load_reward_model(str(tmp_path), readout="qwen2.5-math-prm", device="cpu", trust_remote_code=True)
    enc = rm.encode(PROMPT, STEPS)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([enc.input_ids]))[0][0]        # (T,2), the in-memory model
    expect = torch.softmax(logits[enc.step_ends], -1)[:, 1]
    assert rm.score([PROMPT], [STEPS])[0] == pytest.approx(expect.tolist(), abs=1e-5)


def test_load_reward_model_refuses_a_backbone_without_head(tmp_path, char_tokenizer):
    from prmkit.errors import InputError
    from prmkit.rewards import load_reward_model

    _tiny("LlamaForCausalLM", char_tokenizer).save_pretrained(tmp_path)
    char_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(InputError, match="score.weight.*train a head first"):
        load_reward_model(str(tmp_path), device="cpu")
    # the class method still starts a new head on purpose (training does)
    assert DiscriminativePRM.from_pretrained(str(tmp_path), device="cpu").model.score.weight.shape[0] == 2


def test_score_cli_reads_a_custom_code_prm_with_its_options(tmp_path, monkeypatch):
    """`prmkit score --readout qwen2.5-math-prm --trust-remote-code` on the custom-head fixture gives the
    same step scores as the Python loader."""
    import json

    from typer.testing import CliRunner

    from prmkit.cli import _register, app
    from prmkit.rewards import load_reward_model
    from prmkit.schema import Trace, write_records

    _custom_head_prm(tmp_path / "m")
    write_records(tmp_path / "t.jsonl", [Trace(problem_id="p", prompt=PROMPT, steps=STEPS)])
    _register()
    res = CliRunner().invoke(app, ["score", "--traces", str(tmp_path / "t.jsonl"), "--model", str(tmp_path / "m"),
                                   "--readout", "qwen2.5-math-prm", "--trust-remote-code", "--device", "cpu",
                                   "--out", str(tmp_path / "run")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    scored = [json.loads(x) for x in (tmp_path / "run" / "scored.jsonl").read_text().splitlines()]
    rm = load_reward_model(str(tmp_path / "m"), readout="qwen2.5-math-prm", trust_remote_code=True, device="cpu")
    assert scored[0]["meta"]["rm"]["step_scores"] == pytest.approx(rm.score([PROMPT], [STEPS])[0], abs=1e-6)


def test_bfloat16_loading_scores_close_to_float32(gym_policy):
    """--dtype bfloat16: weights (the likelihood LM's included) load in bf16 and the shipped PRM's step
    scores stay within bf16 rounding of the float32 ones; the policy samples in bf16 too."""
    from prmkit.gym.task import make_split, parse_prompt
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.sample import make_sampler
    from prmkit.resolve import default_policy
    from prmkit.rewards import SHIPPED_PRM_DIR, load_options, load_reward_model

    probs = make_split("test", 4)
    steps = [parse_prompt(p.prompt).solution_steps() for p in probs]
    half = load_reward_model(SHIPPED_PRM_DIR, device="cpu", **load_options(dtype="bfloat16"))
    full = load_reward_model(SHIPPED_PRM_DIR, device="cpu")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert next(half.loglik_lm.parameters()).dtype == torch.bfloat16
    a = half.score([p.prompt for p in probs], steps)
    b = full.score([p.prompt for p in probs], steps)
    assert max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)) < 0.05
    pol = make_sampler(default_policy(), device="cpu", dtype="bfloat16")
    assert next(pol.model.parameters()).dtype == torch.bfloat16
    c = pol.sample([probs[0].prompt], SamplingParams(max_new_tokens=8, temperature=0.0))[0][0]
    assert len(c.token_ids) == len(c.logprobs) > 0


def test_likelihood_lm_in_a_folder_of_the_model_dir_travels_with_it(tmp_path, monkeypatch):
    """prmkit_rm.json's loglik.lm may name a folder inside the PRM's directory: it is loaded from there
    (whatever the working directory), not looked up as a hub id or a path of the caller."""
    import json
    import shutil

    from transformers import AutoModelForCausalLM

    from prmkit.gym.task import make_split, parse_prompt
    from prmkit.resolve import default_policy
    from prmkit.rewards import SHIPPED_PRM_DIR, load_reward_model

    probs = make_split("test", 3)
    prompts, steps = [p.prompt for p in probs], [parse_prompt(p.prompt).solution_steps() for p in probs]
    moved = tmp_path / "prm"
    shutil.copytree(SHIPPED_PRM_DIR, moved)
    lm = AutoModelForCausalLM.from_pretrained(default_policy())
    with torch.no_grad():
        lm.lm_head.weight.mul_(0.5)  # tied embeddings: a different LM, same tokenizer
    lm.save_pretrained(moved / "loglik_lm")
    cfg = json.loads((moved / "prmkit_rm.json").read_text())
    cfg["loglik"]["lm"] = "loglik_lm"
    (moved / "prmkit_rm.json").write_text(json.dumps(cfg))
    monkeypatch.chdir(tmp_path.parent)  # a relative "loglik_lm" must not resolve against the caller
    rm = load_reward_model(str(moved), device="cpu")
    got = next(rm.loglik_lm.parameters())
    assert torch.equal(got, next(lm.parameters()))
    shipped = load_reward_model(SHIPPED_PRM_DIR, device="cpu")
    a, b = rm.score(prompts, steps), shipped.score(prompts, steps)
    assert max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)) > 1e-3
