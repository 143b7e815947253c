"""Public PRMs read exactly as their model cards prescribe: the token sequence each card feeds, the
positions it reads, and (Skywork) the value-head checkpoint layout.

Each `encode_*` function turns (prompt, steps) into a `StepEncoding` whose ids are the ids the card's
snippet builds for the same text and whose `step_ends` are the positions the card reads; the
readout registry (`rewards.readout`) and the implicit PRM (`rewards.implicit`) call them.

* Math-Shepherd (`peiyi9979/math-shepherd-mistral-7b-prm`, arXiv 2312.08935; card "Usage"): the
  text `question + " " + output`, where every step of `output` ends with " ки" and steps are joined
  by "\\n", is tokenized ONCE (`tokenizer.encode`, BOS included); the scores are read where the id
  equals `encode("ки")[-1]`. Tokenizing the pieces one by one would add a SentencePiece dummy prefix
  to each piece (a different sequence from the one the model was trained on).
* Skywork-o1-Open-PRM (`Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B/7B`; github.com/SkyworkAI/
  skywork-o1-prm-inference, `model_utils/io_utils.py:prepare_input`): `encode(bos_token + problem +
  "\\n")`, then per step `encode(step)` followed by the id of "\\n" (`encode("\\n")[-1]`); the value
  head (`v_head.summary`, a Linear(hidden, 1), `model_utils/prm_model.py`) is read through a
  sigmoid at each of those "\\n" ids.
* Qwen2.5-Math-PRM (`Qwen/Qwen2.5-Math-PRM-7B`, arXiv 2501.07301; card "Hugging Face
  Transformers"): system + user + assistant turn whose content is the steps joined and closed by
  "<extra_0>", rendered by the chat template (no generation prompt) and tokenized once; read where the
  id equals `encode("<extra_0>")[0]`.
* EurusPRM (`PRIME-RL/EurusPRM-Stage2`, arXiv 2412.01981 / 2502.01456; card "Usage"): user turn +
  assistant turn of the steps joined by "\\n\\n", tokenized by the chat template; the card's
  `step_last_tokens` (from re-rendering the conversation with the first k steps, stripped, "\\n\\n"
  appended between steps, length - 2) give the first token summed (`step_last_tokens[0]`) and the
  column of the cumulative sum read per step (`step_last_tokens[k]`, which sums the tokens up to
  position `step_last_tokens[k] + 1`). With `ImplicitPRM` (prompt_len = first token summed, step end =
  last token summed) the cumulative q it computes is the card's `beta_reward` at each step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.steps import StepEncoding

def _encode(tokenizer: Any, text: str, add_special_tokens: bool = True) -> list[int]:
    """`tokenizer.encode(text)` as the cards call it (special tokens added by default)."""
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def _need_steps(steps: Sequence[str]) -> None:
    if not steps:
        raise InputError("expected at least one step, got an empty list", field="steps")


def _positions_of(ids: Sequence[int], tag_id: int, n_steps: int, tag: str) -> list[int]:
    ends = [i for i, t in enumerate(ids) if t == tag_id]
    if len(ends) != n_steps:
        raise InputError(f"expected {n_steps} step tags {tag!r} (id {tag_id}) in the tokenized text, found "
                         f"{len(ends)}: a step or the prompt contains the tag, or the tokenizer splits it",
                         field="steps")
    return ends


def _prompt_tokens(tokenizer: Any, text: str, ids: Sequence[int], n_chars: int) -> int:
    """How many of `ids` (the tokenization of `text`, specials included) cover only its first `n_chars`
    characters; from the offsets of a fast tokenizer, else the length of the prefix tokenized alone."""
    try:
        enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
    except Exception:  # a tokenizer without offsets: the prefix tokenized alone
        return min(len(ids), len(_encode(tokenizer, text[:n_chars])))
    return sum(1 for s, e in offsets if e <= n_chars)


# ----------------------------------------------------------------------------------- encodings

def encode_tagged_text(tokenizer: Any, prompt: str, steps: Sequence[str], *, prompt_sep: str = " ",
                       step_tag: str = " ки", sep: str = "\n") -> StepEncoding:
    """Math-Shepherd: `prompt + prompt_sep + sep.join(step + step_tag)` tokenized once; read where the
    id is the tag's (`encode(step_tag.strip())[-1]`)."""
    _need_steps(steps)
    text = prompt + prompt_sep + sep.join(s + step_tag for s in steps)
    ids = _encode(tokenizer, text)
    tag_id = _encode(tokenizer, step_tag.strip())[-1]
    ends = _positions_of(ids, tag_id, len(steps), step_tag.strip())
    return StepEncoding(ids, ends, _prompt_tokens(tokenizer, text, ids, len(prompt)))


def encode_bos_lines(tokenizer: Any, prompt: str, steps: Sequence[str], *, sep: str = "\n") -> StepEncoding:
    """Skywork PRM: `encode(bos + prompt + sep)`, then `encode(step) + [id of sep]` per step, read at that id."""
    _need_steps(steps)
    if tokenizer.bos_token is None:
        raise InputError("this layout starts with the tokenizer's bos_token (Skywork's prepare_input), but the "
                         "tokenizer has none", field="tokenizer.bos_token")
    ids = _encode(tokenizer, tokenizer.bos_token + prompt + sep)
    prompt_len = len(ids)
    sep_id = _encode(tokenizer, sep)[-1]
    ends = []
    for step in steps:
        ids += (_encode(tokenizer, step) if step else []) + [sep_id]
        ends.append(len(ids) - 1)
    return StepEncoding(ids, ends, prompt_len)


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("this readout renders a chat, but the tokenizer has no chat template",
                         field="tokenizer.chat_template")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def encode_chat_tagged(tokenizer: Any, prompt: str, steps: Sequence[str], *, step_tag: str = "<extra_0>",
                       system_prompt: str | None = None) -> StepEncoding:
    """Qwen2.5-Math-PRM: [system], user, assistant (steps joined and closed by the tag) rendered by the
    chat template and tokenized once; read where the id is `encode(step_tag)[0]`."""
    _need_steps(steps)
    head = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + \
        [{"role": "user", "content": prompt}]
    text = _render(tokenizer, head + [{"role": "assistant", "content": step_tag.join(steps) + step_tag}], False)
    ids = _encode(tokenizer, text)
    ends = _positions_of(ids, _encode(tokenizer, step_tag)[0], len(steps), step_tag)
    prompt_len = min(len(_encode(tokenizer, _render(tokenizer, head, True))), ends[0])
    return StepEncoding(ids, ends, prompt_len)


def encode_eurus_chat(tokenizer: Any, prompt: str, steps: Sequence[str], *, sep: str = "\n\n") -> StepEncoding:
    """EurusPRM: the chat (user prompt, assistant steps joined by `sep`) tokenized by the template;
    prompt_len = the card's first summed token, step_ends = the last token each cumulative q sums."""
    _need_steps(steps)

    def conv(k: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": sep.join(steps[:k])}]

    ids = _encode(tokenizer, _render(tokenizer, conv(len(steps)), False), add_special_tokens=False)
    last = []
    for k in range(len(steps) + 1):
        text = _render(tokenizer, conv(k), False).strip()
        if 0 < k < len(steps):
            text += sep
        last.append(len(_encode(tokenizer, text, add_special_tokens=False)) - 2)
    # the card's cumsum column step_last_tokens[k] sums the tokens up to position step_last_tokens[k] + 1
    ends = [t + 1 for t in last[1:]]
    ordered = last[0] <= ends[0] and all(a < b for a, b in zip(ends, ends[1:]))
    if last[0] < 1 or not ordered or ends[-1] >= len(ids):
        raise InputError(f"the chat template does not render the steps as EurusPRM's card expects (first summed "
                         f"token {last[0]}, step ends {ends}, {len(ids)} tokens)", field="tokenizer.chat_template")
    return StepEncoding(ids, ends, last[0])


# ----------------------------------------------------------------------------------- implicit PRM presets

@dataclass(frozen=True)
class ImplicitPreset:
    """How to read one public implicit PRM: its reference model, beta, layout and q (as its card does)."""

    name: str
    ref_model: str
    beta: float
    layout: str
    sep: str
    step_score: str = "q"
    card: str = ""

    def options(self) -> dict[str, Any]:
        """The `ImplicitPRM` keywords this preset sets."""
        return {k: v for k, v in asdict(self).items() if k not in ("name", "card")}


IMPLICIT_PRESETS: dict[str, ImplicitPreset] = {p.name: p for p in [
    # card "Usage": coef=0.001, ref Qwen/Qwen2.5-Math-7B-Instruct, "\n\n" steps, beta_reward.cumsum read per step
    ImplicitPreset("eurus-prm", ref_model="Qwen/Qwen2.5-Math-7B-Instruct", beta=0.001, layout="eurus_chat",
                   sep="\n\n", card="https://huggingface.co/PRIME-RL/EurusPRM-Stage2"),
]}
