"""The ONE definition of a step: split and join text, and find each step's end in token space.

Training, scoring and labeling all go through `encode_steps` (or `step_end_positions_joint` for
token ids a policy generated), so they can never tokenize differently.

Two encodings are offered:

* `mode="segment"` (default, as TRL's stepwise trainer does): the prompt, each step and each
  separator are tokenized on their own and concatenated, so a step's last token never merges with
  the separator (BPE) — the position read is the step's own last token, or the step-tag token when
  the reward model uses a dedicated tag (Math-Shepherd `ки`, Qwen `<extra_0>`).
* `mode="joint"`: the whole text is tokenized at once (exactly as a policy sees it) and each step's
  end is the token whose character span covers the step's last character (fast tokenizers'
  offset mapping).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from prmkit.errors import InputError

DEFAULT_SEP = "\n"


def split_steps(text: str, sep: str = DEFAULT_SEP) -> list[str]:
    """Split a solution into steps on `sep`, dropping empty pieces (blank lines are not steps)."""
    return [s for s in text.split(sep) if s.strip()]


SPLIT_MODES = ("double_newline", "newline", "regex:<pattern>", "step_markers")
# a "Step k:" marker at the start of a line, optionally as a Markdown heading or bold ("## Step 2:", "**Step 2.**")
STEP_MARKER_RE = re.compile(r"^[ \t]*(?:#+[ \t]*|\*\*)?step[ \t]+\d+[ \t]*(?:\*\*)?[:.]", re.IGNORECASE | re.MULTILINE)


def split_solution(text: str, mode: str = "double_newline") -> list[str]:
    """Split a model's raw solution text into steps by a named mode.

    Line endings are normalised first (CRLF and CR become LF); every step is stripped of surrounding
    whitespace and blank pieces are dropped, so leading/trailing blank lines never make a step.

    * `double_newline`: steps are separated by blank lines (`\n\n`, also with spaces on the blank
      line, as Qwen2.5-Math-PRM and PRIME's EurusPRM split); a text with no blank line is split on
      single newlines instead.
    * `newline`: every line is a step.
    * `regex:<pattern>`: steps are separated by matches of the Python regex `<pattern>` (no
      capturing groups: use `(?:...)`).
    * `step_markers`: a step starts at each `Step k:` / `Step k.` marker at the start of a line
      (also `## Step k:` and `**Step k:**`); the marker stays in its step, text before the first
      marker is a step of its own, and `Step 1:` in the middle of a line does not split. A text with
      no marker is split as `double_newline`.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if mode == "double_newline":
        pieces = re.split(r"\n[ \t]*\n", text) if re.search(r"\n[ \t]*\n", text.strip()) else text.split("\n")
    elif mode == "newline":
        pieces = text.split("\n")
    elif mode.startswith("regex:"):
        pieces = _compile_split_regex(mode[len("regex:"):]).split(text)
    elif mode == "step_markers":
        starts = [m.start() for m in STEP_MARKER_RE.finditer(text)]
        if not starts:
            return split_solution(text, "double_newline")
        bounds = [0, *starts, len(text)]
        pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    else:
        raise InputError(f"unknown step-split mode {mode!r}; expected one of {', '.join(SPLIT_MODES)}",
                         field="step_split")
    return [p.strip() for p in pieces if p.strip()]


def _compile_split_regex(pattern: str) -> re.Pattern:
    if not pattern:
        raise InputError("expected a pattern after 'regex:', e.g. regex:\\n(?=\\d+\\.)", field="step_split")
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise InputError(f"invalid step-split regex {pattern!r}: {e}", field="step_split") from None
    if rx.groups:
        raise InputError(f"step-split regex {pattern!r} has capturing groups; use (?:...) instead",
                         field="step_split")
    return rx


def check_split_mode(mode: str) -> None:
    """Raise InputError now (before any model loads) when `mode` is not a valid split mode."""
    split_solution("", mode)


def join_steps(steps: Sequence[str], sep: str = DEFAULT_SEP) -> str:
    """Inverse of `split_steps` for steps that contain no `sep` and are not blank."""
    return sep.join(steps)


@dataclass
class StepEncoding:
    input_ids: list[int]  # (T,)
    step_ends: list[int]  # (S,) index into input_ids of the token read for each step
    prompt_len: int  # number of prompt tokens (including BOS)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def _bos(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer adds in front of a sequence (e.g. BOS), if any."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    n = len(with_special) - len(without)
    if n > 0 and list(with_special[n:]) == list(without):
        return list(with_special[:n])
    return []


def encode_steps(tokenizer: Any, prompt: str, steps: Sequence[str], sep: str = DEFAULT_SEP,
                 step_tag: str | None = None, mode: str = "segment", add_bos: bool = True) -> StepEncoding:
    """Token ids of prompt + steps and the position read for each step.

    With `step_tag`, the tag (a string, usually one special token) is appended after each step
    followed by `sep`, and the tag's last token is the position read.
    """
    if not steps:
        raise InputError("expected at least one step, got an empty list", field="steps")
    if mode == "joint":
        return _encode_joint(tokenizer, prompt, steps, sep, step_tag, add_bos)
    if mode != "segment":
        raise InputError(f"expected 'segment' or 'joint', got {mode!r}", field="mode")
    head = _bos(tokenizer) if add_bos else []
    bos_text = getattr(tokenizer, "bos_token", None)
    if head and isinstance(bos_text, str) and bos_text and prompt.startswith(bos_text):
        head = []  # a chat template wrote the BOS into the prompt text already: not a second one
    ids = head + _ids(tokenizer, prompt)
    prompt_len = len(ids)
    sep_ids, tag_ids = _ids(tokenizer, sep), _ids(tokenizer, step_tag) if step_tag else []
    ends = []
    for i, step in enumerate(steps):
        step_ids = _ids(tokenizer, step)
        if not step_ids and not tag_ids:
            raise InputError("expected a non-empty step", field=f"steps[{i}]")
        ids += step_ids
        if tag_ids:
            ids += tag_ids
        ends.append(len(ids) - 1)
        if i < len(steps) - 1 or tag_ids:
            ids += sep_ids
    return StepEncoding(ids, ends, prompt_len)


def _encode_joint(tokenizer: Any, prompt: str, steps: Sequence[str], sep: str, step_tag: str | None,
                  add_bos: bool) -> StepEncoding:
    text, end_chars = prompt, []
    for i, step in enumerate(steps):
        if not step and not step_tag:
            raise InputError("expected a non-empty step", field=f"steps[{i}]")
        text += step + (step_tag or "")
        end_chars.append(len(text) - 1)
        if i < len(steps) - 1 or step_tag:
            text += sep
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    bos = _bos(tokenizer) if add_bos else []
    ids = bos + list(enc["input_ids"])
    offsets = [(0, 0)] * len(bos) + [tuple(o) for o in enc["offset_mapping"]]
    prompt_len = len(bos) + sum(1 for s, e in offsets[len(bos):] if e <= len(prompt) and e > s)
    return StepEncoding(ids, char_ends_to_token_positions(offsets, end_chars), prompt_len)


def char_ends_to_token_positions(offsets: Sequence[tuple[int, int]], end_chars: Sequence[int]) -> list[int]:
    """For each character index, the index of the token whose span [start, end) covers it."""
    out, t = [], 0
    for c in end_chars:
        while t < len(offsets) and not (offsets[t][0] <= c < offsets[t][1]):
            t += 1
        if t == len(offsets):
            raise InputError(f"no token covers character {c}; the tokenizer's offsets do not map the text")
        out.append(t)
    return out


def step_end_positions_joint(tokenizer: Any, token_ids: Sequence[int], steps: Sequence[str],
                             sep: str = DEFAULT_SEP, start: int = 0) -> list[int]:
    """Step ends inside already generated `token_ids[start:]` (e.g. a policy's completion).

    Decodes token by token, so it works for any tokenizer whose tokens decode independently
    (char-level, byte-level BPE with whole characters); the steps must be `split_steps` of the
    decoded text.
    """
    pieces = [tokenizer.decode([t]) for t in token_ids[start:]]
    offsets, pos = [], 0
    for p in pieces:
        offsets.append((pos, pos + len(p)))
        pos += len(p)
    text = "".join(pieces)
    end_chars, cursor = [], 0
    for i, step in enumerate(steps):
        k = text.find(step, cursor)
        if k < 0:
            raise InputError(f"step {i} not found in the decoded completion", field=f"steps[{i}]")
        cursor = k + len(step)
        end_chars.append(cursor - 1)
    return [start + p for p in char_ends_to_token_positions(offsets, end_chars)]
