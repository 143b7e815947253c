"""The five public PRM families, each read through prmkit's real loading path (a checkpoint saved here
with `save_pretrained` and loaded by `load_reward_model` or `prmkit score`) and checked against an
independent re-implementation of its model card's snippet written here with transformers directly:
the token ids fed and the positions read are equal, and the step scores agree within 1e-5.

The models are tiny random-init models of each family's architecture (Mistral, Qwen2, Llama) with
tokenizers built here that carry the card's special tokens and chat templates. Where each snippet
comes from:

* Math-Shepherd: huggingface.co/peiyi9979/math-shepherd-mistral-7b-prm, "Usage".
* Skywork-o1-Open-PRM: github.com/SkyworkAI/skywork-o1-prm-inference, `model_utils/io_utils.py`
  (`prepare_input`, `derive_step_rewards`) and `model_utils/prm_model.py` (`PRM_MODEL`, `v_head`).
* Qwen2.5-Math-PRM: huggingface.co/Qwen/Qwen2.5-Math-PRM-7B, "Hugging Face Transformers".
* RLHFlow: huggingface.co/RLHFlow/Llama3.1-8B-PRM-Deepseek-Data, "How to use".
* EurusPRM: huggingface.co/PRIME-RL/EurusPRM-Stage2, "Usage".
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from prmkit.rewards import load_reward_model
from prmkit.steps import encode_steps
from tests.conftest import build_bpe_tokenizer

# the card's own example (Math-Shepherd's and Skywork's cards both use this GSM8K problem)
QUESTION = ("Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
            "her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh "
            "duck egg. How much in dollars does she make every day at the farmers' market?")
STEPS = ["Step 1: Janet's ducks lay 16 eggs per day.",
         "Step 2: She eats three for breakfast every morning, so she has 16 - 3 = 13 eggs left.",
         "Step 3: She bakes muffins for her friends every day with four eggs, so she has 13 - 4 = 9 eggs left.",
         "Step 4: She sells the remainder at the farmers' market daily for $2 per fresh duck egg, so she makes "
         "9 * $2 = $18 every day at the farmers' market. The answer is: 18"]

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# Qwen2.5's template shape: a default system turn when the conversation has none
QWEN25 = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nPlease reason step by step, and put your "
          "final answer within \\boxed{}.<|im_end|>\n{% endif %}" + CHATML)
LLAMA31 = ("{{ bos_token }}<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023<|eot_id|>"
           "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>"
           "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def _tiny(cls_name: str, vocab_size: int, pad_id: int, seed: int = 0, **extra):
    import transformers

    cfg_cls = getattr(transformers, cls_name.replace("ForTokenClassification", "Config").replace("ForCausalLM", "Config"))
    cfg = cfg_cls(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, pad_token_id=pad_id,
                  **extra)
    torch.manual_seed(seed)
    return getattr(transformers, cls_name)(cfg).eval()


def _save(path: Path, model, tok) -> str:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()          # (T, V or C)


# ----------------------------------------------------------------------------------- Math-Shepherd

def build_sentencepiece_tokenizer():
    """A SentencePiece-style BPE (Metaspace '▁' with a dummy prefix, BOS added by encode, newlines as
    their own pieces), trained here on the card's example: tokenizing a piece alone prefixes '▁'."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split("\n", "isolated"),
                                                 pre_tokenizers.Metaspace("▁", prepend_scheme="first", split=True)])
    tok.decoder = decoders.Metaspace("▁", prepend_scheme="first")
    corpus = [QUESTION + " " + "\n".join(s + " ки" for s in STEPS), "+ - + -"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"]))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="</s>")


def card_math_shepherd(model, tokenizer, question: str, steps: list[str]):
    """The card's snippet: (ids, positions read, '+' probability there, candidate token ids)."""
    candidate_tokens = tokenizer.encode("+ -")[1:]
    step_tag_id = tokenizer.encode("ки")[-1]
    output = "\n".join(s + " ки" for s in steps)           # the card's output1: 'Step 1: ... ки\nStep 2: ... ки'
    input_id = torch.tensor([tokenizer.encode(f"{question} {output}")])
    with torch.no_grad():
        logits = model(input_id).logits[:, :, candidate_tokens]
        scores = logits.softmax(dim=-1)[:, :, 0]
        step_scores = scores[input_id == step_tag_id]
    positions = (input_id[0] == step_tag_id).nonzero().flatten().tolist()
    return input_id[0].tolist(), positions, step_scores.tolist(), candidate_tokens


def _check_math_shepherd(tmp_path: Path, tok, model) -> None:
    from transformers import AutoTokenizer

    path = _save(tmp_path / "ms", model, tok)
    rm = load_reward_model(path, readout="math-shepherd", device="cpu")
    ids, positions, scores, candidates = card_math_shepherd(model, AutoTokenizer.from_pretrained(path), QUESTION, STEPS)
    enc = rm.encode(QUESTION, STEPS)
    assert enc.input_ids == ids
    assert enc.step_ends == positions and len(positions) == len(STEPS)
    assert list(rm.readout.token_ids(rm.tokenizer)) == candidates
    assert rm.score([QUESTION], [STEPS])[0] == pytest.approx(scores, abs=1e-5)
    # the piecewise tokenization the readout used before gives another sequence: a dummy prefix per piece
    pieces = encode_steps(rm.tokenizer, QUESTION, STEPS, sep="\n", step_tag=" ки").input_ids
    assert len(pieces) > len(ids)


def test_math_shepherd_tokenizes_the_tagged_text_once_like_the_card(tmp_path):
    tok = build_sentencepiece_tokenizer()
    assert tok.convert_ids_to_tokens(tok("\n", add_special_tokens=False)["input_ids"])[0] == "▁"  # the dummy prefix
    _check_math_shepherd(tmp_path, tok, _tiny("MistralForCausalLM", len(tok), tok.pad_token_id))


def _mistral_v1_tokenizer():
    """Mistral 7B v0.1's SentencePiece model as shipped in the `mistral-common` wheel, as a fast tokenizer
    (pieces and scores read with transformers' protobuf schema; merges ordered by score)."""
    spec = importlib.util.find_spec("mistral_common")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("mistral-common is not installed (its wheel ships Mistral's v1 tokenizer.model)")
    f = Path(list(spec.submodule_search_locations)[0]) / "data" / "tokenizer.model.v1"
    if not f.exists():
        pytest.skip(f"{f} not in this mistral-common version")
    from transformers import LlamaTokenizer
    from transformers.convert_slow_tokenizer import import_protobuf
    from transformers.tokenization_utils_base import generate_merges

    proto = import_protobuf().ModelProto()
    proto.ParseFromString(f.read_bytes())
    vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
    merges = generate_merges(vocab, {p.piece: p.score for p in proto.pieces})
    return LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True, pad_token="</s>")


def test_math_shepherd_with_mistral_v1_sentencepiece_model(tmp_path):
    tok = _mistral_v1_tokenizer()
    # the ids the card's comments give for its tokenizer
    assert tok.encode("ки")[-1] == 12902 and tok.encode("+ -")[1:] == [648, 387]
    _check_math_shepherd(tmp_path, tok, _tiny("MistralForCausalLM", len(tok), tok.pad_token_id, hidden_act="silu"))


# ----------------------------------------------------------------------------------- Skywork

def card_skywork_prepare_input(problem: str, response: str, tokenizer, step_token: str):
    """Skywork's `prepare_input`: (input_ids, steps, reward_flags)."""
    prompt_ids = tokenizer.encode(tokenizer.bos_token + problem + "\n")
    response_ids, steps, reward_flags = [], [], [0] * len(prompt_ids)
    step_token_id = tokenizer.encode(step_token)[-1]
    for step in response.split(step_token):
        step_ids = tokenizer.encode(step) if step != "" else []
        step_ids += [step_token_id]
        flag = [0] * len(step_ids)
        flag[-1] = 1
        response_ids.extend(step_ids)
        reward_flags.extend(flag)
        steps.append(step + step_token)
    return prompt_ids + response_ids, steps, reward_flags


def _skywork_checkpoint(path: Path):
    """A tiny Qwen2 causal LM saved in Skywork's layout: the LM's state dict plus `v_head.summary.*`."""
    from safetensors.torch import load_file, save_file

    tok = build_bpe_tokenizer(special=["<|im_start|>", "<|im_end|>"])
    tok.bos_token = "<|endoftext|>"
    lm = _tiny("Qwen2ForCausalLM", len(tok), tok.pad_token_id)
    _save(path, lm, tok)
    torch.manual_seed(3)
    head = torch.nn.Linear(lm.config.hidden_size, 1)
    state = load_file(str(path / "model.safetensors"))
    state.update({"v_head.summary.weight": head.weight.detach().clone(), "v_head.summary.bias": head.bias.detach().clone()})
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "architectures": ["Qwen2ForPrmModel"]}))
    return tok, head


def card_skywork_scores(path: str, head, problem: str, response: str):
    """The card: PRM_MODEL(...)(return_probs=True) = sigmoid(v_head(last hidden state)), read at the flags."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    input_ids, _, reward_flags = card_skywork_prepare_input(problem, response, tokenizer, step_token="\n")
    lm = AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():
        hidden = lm(input_ids=torch.tensor([input_ids]), output_hidden_states=True).hidden_states[-1]
        rewards = torch.sigmoid(head(hidden).squeeze(-1))                    # (1,T)
    flags = torch.tensor(reward_flags)
    positions = torch.nonzero(flags == 1).view(-1).tolist()
    return input_ids, positions, [rewards[0, i].item() for i in positions]


def test_skywork_value_head_through_prmkit_score(tmp_path):
    from typer.testing import CliRunner

    from prmkit.cli import _register, app
    from prmkit.schema import Trace, write_records

    _, head = _skywork_checkpoint(tmp_path / "sky")
    path = str(tmp_path / "sky")
    ids, positions, expect = card_skywork_scores(path, head, QUESTION, "\n".join(STEPS))
    rm = load_reward_model(path, readout="skywork", device="cpu")
    enc = rm.encode(QUESTION, STEPS)
    assert enc.input_ids == ids and enc.step_ends == positions and len(positions) == len(STEPS)
    assert rm.score([QUESTION], [STEPS])[0] == pytest.approx(expect, abs=1e-5)
    write_records(tmp_path / "t.jsonl", [Trace(problem_id="p", prompt=QUESTION, steps=STEPS)])
    _register()
    res = CliRunner().invoke(app, ["score", "--traces", str(tmp_path / "t.jsonl"), "--model", path, "--readout",
                                   "skywork", "--device", "cpu", "--out", str(tmp_path / "run")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    scored = [json.loads(x) for x in (tmp_path / "run" / "scored.jsonl").read_text().splitlines()]
    assert scored[0]["meta"]["rm"]["step_scores"] == pytest.approx(expect, abs=1e-5)


def test_skywork_without_value_head_is_refused(tmp_path):
    from prmkit.errors import InputError

    tok = build_bpe_tokenizer()
    tok.bos_token = "<|endoftext|>"
    _save(tmp_path, _tiny("Qwen2ForCausalLM", len(tok), tok.pad_token_id), tok)
    with pytest.raises(InputError, match="v_head.summary.weight"):
        load_reward_model(str(tmp_path), readout="skywork", device="cpu")


def test_skywork_kept_prefix_cache_and_save_round_trip(tmp_path):
    """The key/value prefix store gives the same Skywork scores, and a saved copy reads the same."""
    _, head = _skywork_checkpoint(tmp_path / "sky")
    rm = load_reward_model(str(tmp_path / "sky"), readout="skywork", device="cpu")
    full = rm.score([QUESTION, QUESTION], [STEPS, STEPS[:2]])
    rm.set_kv_cache(10_000)
    before = rm.stats.tokens_scored
    assert rm.score([QUESTION], [STEPS[:2]])[0] == pytest.approx(full[1], abs=1e-5)
    assert rm.score([QUESTION], [STEPS])[0] == pytest.approx(full[0], abs=1e-5)   # extends the kept prefix
    assert rm.stats.tokens_scored - before == len(rm.encode(QUESTION, STEPS).input_ids)   # each position run once
    rm.save_pretrained(tmp_path / "copy")
    again = load_reward_model(str(tmp_path / "copy"), device="cpu")
    assert again.score([QUESTION], [STEPS])[0] == pytest.approx(full[0], abs=1e-6)


# ----------------------------------------------------------------------------------- Qwen2.5-Math-PRM

def card_qwen_prm(model, tokenizer, system: str, query: str, response: list[str]):
    """The card: the conversation rendered (no generation prompt), encoded, softmax at <extra_0>, class 1."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": query},
                {"role": "assistant", "content": "<extra_0>".join(response) + "<extra_0>"}]
    conversation_str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    input_ids = tokenizer.encode(conversation_str, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits
    step_sep_id = tokenizer.encode("<extra_0>")[0]
    token_masks = input_ids == step_sep_id
    probabilities = torch.softmax(logits, dim=-1) * token_masks.unsqueeze(-1)
    sample = probabilities[0]
    positive = sample[sample != 0].view(-1, 2)[:, 1].tolist()
    return input_ids[0].tolist(), token_masks[0].nonzero().flatten().tolist(), positive


def test_qwen_prm_feeds_the_cards_conversation(tmp_path):
    from transformers import AutoTokenizer

    tok = build_bpe_tokenizer(special=["<extra_0>", "<|im_start|>", "<|im_end|>"])
    tok.chat_template = CHATML
    model = _tiny("Qwen2ForTokenClassification", len(tok), tok.pad_token_id, num_labels=2)
    path = _save(tmp_path / "qwen", model, tok)
    rm = load_reward_model(path, readout="qwen2.5-math-prm", device="cpu")
    system = "Please reason step by step, and put your final answer within \\boxed{}."  # the card's data['system']
    ids, positions, expect = card_qwen_prm(model, AutoTokenizer.from_pretrained(path), system, QUESTION, STEPS)
    enc = rm.encode(QUESTION, STEPS)
    assert enc.input_ids == ids and enc.step_ends == positions and len(positions) == len(STEPS)
    assert rm.score([QUESTION], [STEPS])[0] == pytest.approx(expect, abs=1e-5)


# ----------------------------------------------------------------------------------- RLHFlow

def card_rlhflow(model, tokenizer, question: str, ans_list: list[str]):
    """The card: for each k, the conversation up to step k (each step a user turn answered '+'), the
    '+'/'-' logits at position -3, softmax, index 0. Returns (ids of each prefix conversation, scores)."""
    plus_tag_id = tokenizer.encode("+")[-1]
    minus_tag_id = tokenizer.encode("-")[-1]
    candidate_tokens = [plus_tag_id, minus_tag_id]
    conversation, all_ids, step_scores = [], [], []
    for k in range(len(ans_list)):
        text = question + " " + ans_list[0] if k == 0 else ans_list[k]
        conversation.append({"content": text, "role": "user"})
        conversation.append({"content": "+", "role": "assistant"})
        # transformers 5 returns a BatchEncoding here where the card's version returned the tensor
        input_ids = tokenizer.apply_chat_template(conversation, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(input_ids).logits[:, -3, candidate_tokens]
            scores = logits.softmax(dim=-1)[:, 0]
        all_ids.append(input_ids[0].tolist())
        step_scores.append(scores[0].item())
    return all_ids, step_scores


def test_rlhflow_reads_each_prefix_like_the_card(tmp_path):
    from transformers import AutoTokenizer

    tok = build_bpe_tokenizer(special=["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"])
    tok.bos_token = "<|begin_of_text|>"
    tok.chat_template = LLAMA31
    model = _tiny("LlamaForCausalLM", len(tok), tok.pad_token_id)
    path = _save(tmp_path / "rlhflow", model, tok)
    rm = load_reward_model(path, readout="rlhflow", device="cpu")
    prefixes, expect = card_rlhflow(model, AutoTokenizer.from_pretrained(path), QUESTION, STEPS)
    enc = rm.encode(QUESTION, STEPS)
    # one pass over the whole conversation: each card prefix is a prefix of it, read at the card's -3
    assert enc.input_ids == prefixes[-1]
    assert all(enc.input_ids[: len(p)] == p for p in prefixes)
    assert enc.step_ends == [len(p) - 3 for p in prefixes]
    assert rm.score([QUESTION], [STEPS])[0] == pytest.approx(expect, abs=1e-5)


# ----------------------------------------------------------------------------------- EurusPRM

def card_eurus(model, ref_model, tokenizer, query: str, answer: list[str], coef: float):
    """The card's snippet: (input ids, step_last_tokens, beta_reward per step = the cumulative q)."""
    input_ids = tokenizer.apply_chat_template([{"role": "user", "content": query},
                                               {"role": "assistant", "content": "\n\n".join(answer)}],
                                              tokenize=True, add_generation_prompt=False, return_tensors="pt")
    input_ids = input_ids["input_ids"]                    # transformers 5: a BatchEncoding
    attention_mask = input_ids != tokenizer.pad_token_id
    step_last_tokens = []
    for step_num in range(0, len(answer) + 1):
        conv = tokenizer.apply_chat_template([{"role": "user", "content": query},
                                              {"role": "assistant", "content": "\n\n".join(answer[:step_num])}],
                                             tokenize=False, add_generation_prompt=False)
        conv = conv.strip()
        if step_num != 0 and step_num != len(answer):
            conv += "\n\n"
        currect_ids = tokenizer.encode(conv, add_special_tokens=False)
        step_last_tokens.append(len(currect_ids) - 2)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": input_ids}
    label_mask = torch.tensor([[0] * step_last_tokens[0] + [1] * (input_ids.shape[-1] - step_last_tokens[0])])
    last = list(step_last_tokens)
    step_last_tokens = torch.tensor([step_last_tokens])

    def get_logps(model, inputs):
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        labels = inputs["labels"][:, 1:].clone().long()
        logits = logits[:, :-1, :]
        labels[labels == -100] = 0
        return torch.gather(logits.log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)

    with torch.no_grad():
        per_token_logps = get_logps(model, inputs)
        ref_per_token_logps = get_logps(ref_model, inputs)
    raw_reward = per_token_logps - ref_per_token_logps
    beta_reward = coef * raw_reward * label_mask[:, 1:]
    beta_reward = beta_reward.cumsum(-1)
    beta_reward = beta_reward.gather(dim=-1, index=step_last_tokens[:, 1:])
    return input_ids[0].tolist(), last, beta_reward[0].tolist()


def _eurus_dirs(tmp_path: Path):
    """A tiny Qwen2 implicit PRM and a different tiny Qwen2 reference, saved with a Qwen2.5-style template."""
    tok = build_bpe_tokenizer(special=["<|im_start|>", "<|im_end|>"])
    tok.chat_template = QWEN25
    policy = _tiny("Qwen2ForCausalLM", len(tok), tok.pad_token_id, seed=0)
    ref = _tiny("Qwen2ForCausalLM", len(tok), tok.pad_token_id, seed=1)
    return _save(tmp_path / "eurus", policy, tok), _save(tmp_path / "ref", ref, tok), policy, ref


@pytest.fixture
def eurus_dirs(tmp_path):
    return _eurus_dirs(tmp_path)


def test_eurus_prm_loads_with_its_reference_and_beta_and_reads_the_cards_q(eurus_dirs):
    from transformers import AutoTokenizer

    path, ref_path, policy, ref = eurus_dirs
    rm = load_reward_model(path, readout="eurus-prm", ref_model=ref_path, device="cpu")
    assert rm.kind == "implicit" and rm.beta == 0.001 and rm.sep == "\n\n"      # the card's coef=0.001
    assert rm.ref_name == ref_path
    tok = AutoTokenizer.from_pretrained(path)
    ids, last, q = card_eurus(policy, ref, tok, QUESTION, STEPS, coef=0.001)
    enc = rm.encode(QUESTION, STEPS)
    assert enc.input_ids == ids
    # the first token summed and the last token each cumulative sum reaches (cumsum column + 1)
    assert enc.prompt_len == last[0] and enc.step_ends == [t + 1 for t in last[1:]]
    got = [math.log(p / (1 - p)) for p in rm.score([QUESTION], [STEPS])[0]]    # score = sigmoid(q)
    assert got == pytest.approx(q, abs=2e-6)
    assert max(abs(x) for x in q) > 1e-4                                      # a q the tolerance can tell apart


def test_eurus_prm_scores_within_1e5_at_a_large_beta(eurus_dirs):
    from transformers import AutoTokenizer

    path, ref_path, policy, ref = eurus_dirs
    rm = load_reward_model(path, readout="eurus-prm", ref_model=ref_path, beta=1.0, device="cpu")
    _, _, q = card_eurus(policy, ref, AutoTokenizer.from_pretrained(path), QUESTION, STEPS, coef=1.0)
    assert rm.score([QUESTION], [STEPS])[0] == pytest.approx([1 / (1 + math.exp(-x)) for x in q], abs=1e-5)
    assert len({round(x, 3) for x in q}) == len(q)                           # distinct per-step q values


@pytest.mark.parametrize("readout,missing", [("skywork", "bos_token"), ("qwen2.5-math-prm", "chat_template"),
                                             ("rlhflow", "chat_template"), ("eurus-prm", "chat_template")])
def test_a_tokenizer_without_what_the_card_needs_fails_before_any_weights_load(tmp_path, readout, missing):
    """The dir holds only a tokenizer (no bos token, no chat template): the error names what is missing,
    so it came before the (absent) weights were read."""
    from prmkit.errors import InputError

    tok = build_bpe_tokenizer(special=["<extra_0>"])
    tok.save_pretrained(tmp_path)
    with pytest.raises(InputError, match=missing) as e:
        load_reward_model(str(tmp_path), readout=readout, device="cpu",
                          **({"ref_model": "none"} if readout == "eurus-prm" else {}))
    assert str(tmp_path) in str(e.value)
