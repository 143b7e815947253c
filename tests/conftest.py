"""Shared fixtures: tokenizers and tiny models built here (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prmkit.data import gsm8k_test_path

os.environ.setdefault("PRMKIT_QUIET", "1")


def pytest_configure(config):
    # the test models are tiny: one thread is fastest, and it keeps the suite steady on a busy 2-core box
    import torch

    torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
GSM8K_TEST = gsm8k_test_path()  # vendored in the package (MIT licence beside it), never ../shared


def build_bpe_tokenizer(special: list[str] | None = None):
    """A byte-level BPE tokenizer trained here on a small corpus (GPT-2 style, 400 tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        "Step 1: Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
        "She makes 9 * 2 = $18 every day at the farmer's market.",
        "The answer is 18. So the total amount of fabric is 2+1=3 bolts.",
        "Let's solve this step by step. First, we compute the sum.",
    ] * 50
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"] + (special or []),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    t = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    if special:
        t.add_special_tokens({"additional_special_tokens": special})
    return t


@pytest.fixture
def one_thread():
    """One torch thread for the test: the tiny models are overhead-bound, and on a shared 2-core machine
    two OpenMP threads can be many times slower (modules opt in with `pytestmark`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def char_tokenizer():
    from prmkit.gym.tokenizer import build_char_tokenizer

    return build_char_tokenizer()


@pytest.fixture(scope="session")
def bpe_tokenizer():
    return build_bpe_tokenizer()


@pytest.fixture(scope="session")
def bpe_tag_tokenizer():
    return build_bpe_tokenizer(special=["<extra_0>"])


@pytest.fixture(scope="session")
def gym_policy():
    """The shipped gym policy as an HFSampler."""
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy

    return HFSampler.from_pretrained(default_policy())


CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
"""Qwen2's chat layout (ChatML): each turn `<|im_start|>role\\ncontent<|im_end|>\\n`, then the generation prompt"""


def build_qwen_chat_tokenizer():
    """A byte-level BPE tokenizer with Qwen2's special tokens and a ChatML chat template."""
    tok = build_bpe_tokenizer(special=["<|im_start|>", "<|im_end|>"])
    tok.chat_template = CHATML_TEMPLATE
    return tok


def build_tiny_qwen2(tokenizer, seed: int = 0):
    """A random-init Qwen2ForCausalLM of tiny size over `tokenizer`'s vocabulary."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id)
    return Qwen2ForCausalLM(cfg).eval()
