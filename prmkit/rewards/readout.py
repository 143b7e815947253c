"""Readouts: where a discriminative reward model reads each step's score, and how.

A `Readout` declares, for one family of PRMs, how a (prompt, steps) pair becomes token ids and
which positions and outputs give the step scores:

* `head="classifier"`: a token-classification head (`AutoModelForTokenClassification`); the score
  is softmax(logits)[positive_class] at the read position (a 1-label head: sigmoid of its logit).
* `head="lm_tokens"`: the causal-LM head restricted to two tokens; the score is
  softmax(logits[good], logits[bad])[good] at the read position (the logits there predict the
  token that follows, e.g. the `+`/`-` after Math-Shepherd's `ки` tag).
* `head="value_head"`: a decoder plus a one-logit linear head stored as `v_head.summary.*`
  (Skywork-o1-Open-PRM, `rewards.value_head`); the score is sigmoid(logit) at the read position.

Layouts (how the text is built):

* `segment`: prompt, then each step followed by `step_tag` (if any) and `sep`, each piece tokenized
  on its own (`prmkit.steps.encode_steps`); the read position is the tag's last token, or the step's
  last token without a tag; with `read_at_sep` (TRL's PRMTrainer), every step including the last is
  followed by `sep` and the separator's last token is read.
* `tagged_text` (Math-Shepherd's card): `prompt + prompt_sep + sep.join(step + step_tag)` tokenized
  once, read where the id is the tag's (`rewards.public_prms.encode_tagged_text`).
* `bos_lines` (Skywork's `prepare_input`): `bos + prompt + sep`, then each step followed by the id
  of `sep`, read at that id (`encode_bos_lines`).
* `qwen_chat` (Qwen2.5-Math-PRM's card): system + user + assistant turn of the steps each closed by
  `step_tag`, rendered by the tokenizer's chat template and tokenized once (`encode_chat_tagged`).
* `chat_turns` (RLHFlow's card): every step is a user turn answered by the assistant with `good`;
  the read position is the last token before each assistant answer.

A step score is always P(step is good); `step_logit` is the matching log-odds
(log p_good - log p_bad), so training uses one BCE-with-logits for every head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.rewards.public_prms import encode_bos_lines, encode_chat_tagged, encode_tagged_text
from prmkit.steps import StepEncoding, encode_steps

HEADS = ("classifier", "lm_tokens", "value_head")
LAYOUTS = ("segment", "tagged_text", "bos_lines", "qwen_chat", "chat_turns")


@dataclass(frozen=True)
class Readout:
    """How one PRM family turns (prompt, steps) into ids and reads a score per step."""

    name: str
    head: str = "classifier"
    layout: str = "segment"
    sep: str = "\n"
    step_tag: str | None = None
    positive_class: int = 1
    good_token: str | None = None
    bad_token: str | None = None
    system_prompt: str | None = None
    read_at_sep: bool = False
    prompt_sep: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise InputError(f"expected a head in {HEADS}, got {self.head!r}", field="readout.head")
        if self.layout not in LAYOUTS:
            raise InputError(f"expected a layout in {LAYOUTS}, got {self.layout!r}", field="readout.layout")
        if self.head == "lm_tokens" and not (self.good_token and self.bad_token):
            raise InputError("an lm_tokens readout needs good_token and bad_token", field="readout.good_token")
        if self.layout in ("tagged_text", "qwen_chat") and not (self.step_tag or "").strip():
            raise InputError(f"a {self.layout} readout needs a step_tag", field="readout.step_tag")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Readout":
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(d) - known)
        if extra:
            raise InputError(f"unknown readout fields {extra}; expected some of {sorted(known)}", field="readout")
        return cls(**d)

    # ------------------------------------------------------------------------------- encoding

    def encode(self, tokenizer: Any, prompt: str, steps: Sequence[str]) -> StepEncoding:
        """Token ids of (prompt, steps) in this readout's layout, and the position read per step."""
        if self.layout == "segment" and self.read_at_sep:
            # TRL: every step (the last one too) is followed by the separator, read at its last token
            return encode_steps(tokenizer, prompt, steps, sep="", step_tag=self.sep)
        if self.layout == "segment":
            return encode_steps(tokenizer, prompt, steps, sep=self.sep, step_tag=self.step_tag)
        if self.layout == "bos_lines":
            return encode_bos_lines(tokenizer, prompt, steps, sep=self.sep)
        # whole texts tokenized once: nothing to share between traces, so past the piece cache
        whole = tokenizer.tokenizer if isinstance(tokenizer, CachedTokenizer) else tokenizer
        if self.layout == "tagged_text":
            return encode_tagged_text(whole, prompt, steps, prompt_sep=self.prompt_sep,
                                      step_tag=self.step_tag or "", sep=self.sep)
        if self.layout == "qwen_chat":
            return encode_chat_tagged(whole, prompt, steps, step_tag=self.step_tag or "",
                                      system_prompt=self.system_prompt)
        return self._encode_chat_turns(tokenizer, prompt, steps)

    def encode_many(self, tokenizer: Any, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[StepEncoding]:
        """`encode` of many traces; with a `CachedTokenizer`, all pieces are tokenized in one batched call."""
        if isinstance(tokenizer, CachedTokenizer) and self.layout == "segment":
            tokenizer.prefetch(list(prompts) + [s for ss in steps for s in ss] + [self.sep, self.step_tag or ""])
        return [self.encode(tokenizer, p, s) for p, s in zip(prompts, steps)]

    def _encode_chat_turns(self, tokenizer: Any, prompt: str, steps: Sequence[str]) -> StepEncoding:
        # RLHFlow: turn 1 = problem + first step, later turns = one step each; the assistant answers
        # `good` after each turn, and the score is read where that answer is predicted.
        if not steps:
            raise InputError("expected at least one step, got an empty list", field="steps")
        messages: list[dict[str, str]] = []
        prefixes: list[list[int]] = []
        for k, step in enumerate(steps):
            messages.append({"role": "user", "content": (prompt + " " + step) if k == 0 else step})
            prefixes.append(_template_ids(tokenizer, messages, add_generation_prompt=True))
            messages.append({"role": "assistant", "content": self.good_token or "+"})
        ids = _template_ids(tokenizer, messages, add_generation_prompt=False)
        for k, prefix in enumerate(prefixes):
            if ids[: len(prefix)] != prefix:
                raise InputError(f"the chat template does not tokenize turn {k} the same inside the whole "
                                 "conversation; scores would be read at the wrong tokens", field="readout.layout")
        ends = [len(p) - 1 for p in prefixes]
        return StepEncoding(ids, ends, ends[0])

    def check_tokenizer(self, tokenizer: Any, source: str | None = None) -> None:
        """Fail before a model loads when the tokenizer lacks what this readout reads: a bos_token
        (bos_lines), a chat template (qwen_chat, chat_turns), single-token good/bad answers (lm_tokens)."""
        if self.layout == "bos_lines" and tokenizer.bos_token is None:
            raise InputError(f"the {self.name!r} readout starts every input with the tokenizer's bos_token, but this "
                             "tokenizer has none", file=source, field="bos_token")
        if self.layout in ("qwen_chat", "chat_turns") and not getattr(tokenizer, "chat_template", None):
            raise InputError(f"the {self.name!r} readout renders a chat, but this tokenizer has no chat template",
                             file=source, field="chat_template")
        self.token_ids(tokenizer)

    # ------------------------------------------------------------------------------- reading

    def token_ids(self, tokenizer: Any) -> tuple[int, int] | None:
        """(good, bad) token ids for an lm_tokens head; None for a classifier head."""
        if self.head != "lm_tokens":
            return None
        return _single_id(tokenizer, self.good_token, "good_token"), _single_id(tokenizer, self.bad_token, "bad_token")


def _template_ids(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _single_id(tokenizer: Any, token: str | None, field: str) -> int:
    ids = tokenizer(token, add_special_tokens=False)["input_ids"] if token else []
    if len(ids) != 1:
        raise InputError(f"expected {token!r} to be exactly one token of this tokenizer, got ids {ids}",
                         field=f"readout.{field}")
    return int(ids[0])


class CachedTokenizer:
    """A tokenizer wrapper that memoises piece tokenization (what `encode_steps` asks for) and fills its
    cache in one batched call (`prefetch`). Ids are the wrapped tokenizer's own: a fast tokenizer's
    backend `encode` is what its `__call__` runs; other tokenizers go through `__call__`. Everything
    else (chat templates, special ids) is delegated."""

    def __init__(self, tokenizer: Any, max_items: int = 200_000):
        self.tokenizer = tokenizer
        self._backend = getattr(tokenizer, "_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
        self._cache: dict[tuple[str, bool], list[int]] = {}
        self._max = max_items

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)

    def __len__(self) -> int:
        return len(self.tokenizer)

    def prefetch(self, texts: Sequence[str], add_special_tokens: bool = False) -> None:
        missing = list({t for t in texts if (t, add_special_tokens) not in self._cache})
        if not missing:
            return
        if len(self._cache) + len(missing) > self._max:
            self._cache.clear()
        if self._backend is not None:
            encs = self._backend.encode_batch(missing, add_special_tokens=add_special_tokens)
            for t, e in zip(missing, encs):
                self._cache[(t, add_special_tokens)] = list(e.ids)
        else:
            for t in missing:
                self._cache[(t, add_special_tokens)] = list(self.tokenizer(t, add_special_tokens=add_special_tokens)["input_ids"])

    def __call__(self, text: str, add_special_tokens: bool = True, **kw: Any):
        if kw or not isinstance(text, str):
            return self.tokenizer(text, add_special_tokens=add_special_tokens, **kw)
        key = (text, add_special_tokens)
        if key not in self._cache:
            self.prefetch([text], add_special_tokens)
        return {"input_ids": self._cache[key]}


# name -> readout of a PRM family. External PRMs are entries here, not if-chains; each public one cites
# where its card documents the layout (details in `rewards.public_prms`).
READOUTS: dict[str, Readout] = {r.name: r for r in [
    Readout("trl", head="classifier", sep="\n", read_at_sep=True, positive_class=1,
            description="TRL PRMTrainer layout (<=1.13): each step followed by the separator, label and "
                        "score at the separator's last token; 2-class token classification, LABEL_1 = correct. "
                        "prmkit's own PRMs use it."),
    Readout("token-classification", head="classifier", sep="\n", step_tag=None, positive_class=1,
            description="2-class token classification read at each step's own last token (separator "
                        "between steps only)"),
    # huggingface.co/peiyi9979/math-shepherd-mistral-7b-prm, "Usage" (arXiv 2312.08935)
    Readout("math-shepherd", head="lm_tokens", layout="tagged_text", prompt_sep=" ", sep="\n", step_tag=" ки",
            good_token="+", bad_token="-",
            description="Math-Shepherd: question + ' ' + steps each ending ' ки', joined by newlines, tokenized "
                        "once; LM logits of '+' vs '-' where the id is the tag's"),
    # github.com/SkyworkAI/skywork-o1-prm-inference, model_utils/io_utils.py and prm_model.py
    Readout("skywork", head="value_head", layout="bos_lines", sep="\n",
            description="Skywork-o1-Open-PRM: bos + problem + newline, each step followed by the newline id; "
                        "sigmoid of the value head (v_head.summary) at each newline"),
    # huggingface.co/Qwen/Qwen2.5-Math-PRM-7B, "Hugging Face Transformers" (arXiv 2501.07301)
    Readout("qwen2.5-math-prm", head="classifier", layout="qwen_chat", sep="", step_tag="<extra_0>",
            positive_class=1,
            system_prompt="Please reason step by step, and put your final answer within \\boxed{}.",
            description="Qwen2.5-Math-PRM: chat template, <extra_0> after each step, 2-class head, class 1 = good"),
    # huggingface.co/RLHFlow/Llama3.1-8B-PRM-Deepseek-Data (and -Mistral-Data), "How to use"
    Readout("rlhflow", head="lm_tokens", layout="chat_turns", good_token="+", bad_token="-",
            description="RLHFlow PRMs: each step a user turn, the assistant answers '+'; '+' vs '-' logits "
                        "where the answer is predicted"),
]}


def get_readout(name_or_dict: str | dict | Readout) -> Readout:
    """A readout by registry name, from its saved dict, or as given."""
    if isinstance(name_or_dict, Readout):
        return name_or_dict
    if isinstance(name_or_dict, dict):
        return Readout.from_dict(name_or_dict)
    if name_or_dict not in READOUTS:
        raise InputError(f"unknown readout {name_or_dict!r}; expected one of {sorted(READOUTS)}", field="readout")
    return READOUTS[name_or_dict]
