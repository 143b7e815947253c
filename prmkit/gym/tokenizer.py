"""A character-level tokenizer for the gym, built as a standard Hugging Face fast tokenizer.

Saved with `save_pretrained`, it loads back with `AutoTokenizer.from_pretrained(dir)` like any hub
tokenizer, so every code path that takes a model id works on the gym unchanged.
"""

from __future__ import annotations

GYM_CHARS = "0123456789+-*/=,:QA\n "
SPECIAL = {"pad": "<pad>", "bos": "<bos>", "eos": "<eos>", "unk": "<unk>"}


def build_char_tokenizer(chars: str = GYM_CHARS):
    """A `PreTrainedTokenizerFast`: one token per character, BOS prepended, decode concatenates."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL.values())}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk"]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    bos_id = vocab[SPECIAL["bos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SPECIAL['bos']} $A", pair=f"{SPECIAL['bos']} $A $B", special_tokens=[(SPECIAL["bos"], bos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=SPECIAL["bos"], eos_token=SPECIAL["eos"], pad_token=SPECIAL["pad"],
        unk_token=SPECIAL["unk"], padding_side="left", clean_up_tokenization_spaces=False)
