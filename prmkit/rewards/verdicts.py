"""Reading a generative verifier's verdicts (pure): `\\boxed{correct}`-style step verdicts (ThinkPRM,
arXiv 2504.16828), final Yes/No judgements (GenPRM, arXiv 2504.00891), and the verdict probability
P(pos) / (P(pos) + P(neg)) from teacher-forced or top logprobs. `generative.py` runs the model."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence


# ---------------------------------------------------------------------------------------------
# parsing (pure)


@dataclass(frozen=True)
class Verdict:
    positive: bool
    start: int  # character offset of the verdict word in the chain's text
    word: str  # the word as written


_BOXED = r"\\boxed\s*\{{\s*(?:\\text(?:bf)?\s*\{{\s*)?\**\s*({words})\b"
_STEP_HEADER = re.compile(r"(?im)^[\s*#>_-]*step\s*(\d+)\b")
_FINAL = re.compile(r"(?i)is the solution correct\?*\s*\**\s*(yes|no)\b")
_JUDGEMENT = re.compile(r"(?i)(?:judge?ment|verdict|answer|correct\?)\s*\**\s*[:\-]?\s*\**\s*(yes|no)\b")


def _boxed(words: Sequence[str]) -> re.Pattern:
    return re.compile(_BOXED.format(words="|".join(re.escape(w) for w in words)), re.IGNORECASE)


_BOXED_STEP = _boxed(["incorrect", "correct"])  # longest first
_BOXED_YES_NO = _boxed(["yes", "no"])


def parse_step_verdicts(text: str, num_steps: int) -> list[Verdict | None]:
    """ThinkPRM-style per-step verdicts: `\\boxed{correct}` / `\\boxed{incorrect}` (also
    `\\boxed{\\text{correct}}`, any case) mapped to steps.

    A verdict belongs to the step named by the nearest `Step k` header before it; with no headers,
    verdicts go to steps in the order written. When a step gets several verdicts (re-verification)
    the last one counts. Steps without a verdict are None; verdicts for steps beyond `num_steps`
    are ignored.
    """
    out: list[Verdict | None] = [None] * num_steps
    headers = [(m.start(), int(m.group(1)) if len(m.group(1)) <= 12 else 0)  # 0: no such step
               for m in _STEP_HEADER.finditer(text)]
    for order, m in enumerate(_BOXED_STEP.finditer(text)):
        before = [k for pos, k in headers if pos < m.start()]
        k = before[-1] - 1 if before else (order if not headers else -1)
        if 0 <= k < num_steps:
            out[k] = Verdict(m.group(1).lower() == "correct", m.start(1), m.group(1))
    return out


def parse_final_verdict(text: str) -> Verdict | None:
    """ThinkPRM's closing `Is the solution correct? Yes|No` (markdown bold allowed), last one wins."""
    found = list(_FINAL.finditer(text))
    if not found:
        return None
    m = found[-1]
    return Verdict(m.group(1).lower() == "yes", m.start(1), m.group(1))


def parse_yes_no(text: str) -> Verdict | None:
    """GenPRM-style judgement: the last `\\boxed{Yes|No}`, else the last `Judgement: Yes|No`
    (also `**Yes**`, `Verdict:`, `Answer:`); None when there is neither."""
    found = list(_BOXED_YES_NO.finditer(text)) or list(_JUDGEMENT.finditer(text))
    if not found:
        return None
    m = found[-1]
    return Verdict(m.group(1).lower() == "yes", m.start(1), m.group(1))


def verdict_probability(logp_pos: float, logp_neg: float) -> float:
    """P(pos) / (P(pos) + P(neg)) from log-probabilities (GenPRM's step score, arXiv 2504.00891)."""
    if math.isinf(logp_pos) and math.isinf(logp_neg):
        return float("nan")
    return 1.0 / (1.0 + math.exp(min(700.0, logp_neg - logp_pos)))


def top_logprob_probability(top: dict[str, float], pos: Sequence[str], neg: Sequence[str]) -> float | None:
    """GenPRM's rule on an API's top logprobs at the verdict token: a side missing from the list
    gets the smallest logprob returned; None when neither side is listed.

    `pos`/`neg`: the token strings that count for each side (e.g. ["Yes", " Yes"])."""
    lp = [max((top[t] for t in side if t in top), default=None) for side in (pos, neg)]
    if lp[0] is None and lp[1] is None:
        return None
    floor = min(top.values())
    return verdict_probability(lp[0] if lp[0] is not None else floor, lp[1] if lp[1] is not None else floor)


def top_logprob_verdict(text: str, v: Verdict, tokens: Sequence[str], top: Sequence[dict | None],
                        pair: tuple[str, str]) -> float | None:
    """`top_logprob_probability` at the token where verdict `v` starts, from an API's per-token
    strings and top logprobs. A listed token counts for a side when it spells the start of that
    side's word (after whatever of the token comes before the word, e.g. a space or `{`).
    None when offsets cannot be matched to the text or neither side is listed."""
    if len(tokens) != len(top) or sum(map(len, tokens)) != len(text):
        return None
    pos = 0
    for tok_str, alternatives in zip(tokens, top):
        if pos <= v.start < pos + len(tok_str):
            lead = text[pos:v.start]
            if not alternatives:
                return None

            def keys(word: str) -> list[str]:
                return [t for t in alternatives if len(t) > len(lead) and (lead + word).startswith(t)]

            # a token that spells the start of both words (e.g. lead only) decides nothing
            pos_keys, neg_keys = keys(pair[0]), keys(pair[1])
            shared = set(pos_keys) & set(neg_keys)
            return top_logprob_probability(dict(alternatives), [t for t in pos_keys if t not in shared],
                                           [t for t in neg_keys if t not in shared])
        pos += len(tok_str)
    return None


def cased_pair(pair: tuple[str, str], written: str) -> tuple[str, str]:
    """The verdict pair in the case the model wrote (`Correct` -> (`Correct`, `Incorrect`))."""
    if written.isupper() and len(written) > 1:
        return pair[0].upper(), pair[1].upper()
    if written[:1].isupper():
        return pair[0][:1].upper() + pair[0][1:], pair[1][:1].upper() + pair[1][1:]
    return pair[0].lower(), pair[1].lower()
