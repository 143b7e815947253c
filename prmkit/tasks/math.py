"""MATH outcome grader: the last `\\boxed{...}` answer, judged equivalent by math-verify.

    grader = MathGrader()
    grader.extract_answer(r"... so $\\boxed{\\frac{1}{2}}$.")   # -> "\\frac{1}{2}"
    grader.extract_answer("The answer is 5.")                  # -> "5" (fallback, see below)
    grader.is_correct(r"\\frac{1}{2}", "0.5")                    # -> True

When nothing is boxed the grader falls back (`answer_fallback=True`, the default) in the order of
Qwen2.5-Math's evaluation (`evaluation/parser.py`, `extract_answer`): Minerva's "final answer is
$X$. I hope" (checked first), then the last box, then the text after the last "he answer is",
then after the last "final answer is", then the last number (commas removed). The phrase answers
are cut at the end of their line or sentence (Qwen keeps the rest of the text). With
`answer_fallback=False` only a box counts.

math-verify bounds its own parsing and comparison time with `signal.alarm`, which only works in the
main thread of the main interpreter. In the main thread the grader passes a timeout (default 5 s);
elsewhere (a thread pool, a data-loader worker thread) it passes None, so math-verify runs without
a time limit and the caller is responsible for bounding it (e.g. grade in a subprocess).
"""

from __future__ import annotations

import re
import threading

BOX_COMMANDS = ("\\boxed", "\\fbox")
DEFAULT_TIMEOUT_S = 5
ANSWER_PHRASES = ("he answer is", "final answer is")  # Qwen2.5-Math's order ("The/the answer is" first)
_MINERVA_RE = re.compile(r"final answer is \$(.+?)\$\. I hope", re.DOTALL)
_LAST_NUMBER_RE = re.compile(r"-?\d*\.?\d+")  # Qwen2.5-Math's last-number pattern


def _find_box_starts(text: str) -> list[tuple[int, int]]:
    """(start of the command, index just past its name) for every `\\boxed` / `\\fbox`."""
    hits = []
    for cmd in BOX_COMMANDS:
        i = text.find(cmd)
        while i != -1:
            end = i + len(cmd)
            # `\boxed` must not be the prefix of a longer command name (e.g. `\boxedx`)
            if end >= len(text) or not text[end].isalpha():
                hits.append((i, end))
            i = text.find(cmd, end)
    return sorted(hits)


def _braced_content(text: str, open_at: int) -> str | None:
    """Content of the brace group whose `{` is at `open_at`; None if unbalanced.

    Escaped braces (`\\{`, `\\}`) are content, not structure.
    """
    depth, i = 0, open_at
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2  # skip the escaped character (covers `\{` and `\}`)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:i]
        i += 1
    return None


def extract_boxed(text: str) -> str | None:
    """Content of the LAST `\\boxed{...}` or `\\fbox{...}` in `text` (balanced braces), or None.

    `\\boxed 5` (a space-separated single token, as some solutions write) is accepted too. A last
    box whose braces never close (a truncated generation) gives None rather than an earlier box,
    and so does an empty box.
    """
    if not text:
        return None
    hits = _find_box_starts(text)
    if not hits:
        return None
    _, end = hits[-1]
    rest = text[end:]
    stripped = rest.lstrip()
    if stripped.startswith("{"):
        content = _braced_content(text, end + (len(rest) - len(stripped)))
    elif rest[:1] == " ":
        words = stripped.split("$")[0].split()
        content = words[0] if words else None
    else:
        content = None
    if content is None or not content.strip():
        return None
    return content.strip()


def _strip_dollars(s: str) -> str:
    s = s.strip()
    while len(s) >= 2 and s.startswith("$") and s.endswith("$") and not s.endswith("\\$"):
        s = s[1:-1].strip()
    return s


def _phrase_answer(rest: str) -> str | None:
    """The answer written after "the answer is": up to the end of its line or sentence, without a
    leading ':' or trailing '.' and '/', and without surrounding `$`."""
    rest = rest.strip().split("\n", 1)[0]
    rest = re.split(r"\.(?:\s|$)", rest, maxsplit=1)[0].strip()
    rest = _strip_dollars(rest.lstrip(":").rstrip("./").strip())
    return rest or None


def extract_math_answer(text: str, fallback: bool = True) -> str | None:
    """The final answer of a MATH-style solution: the last box, or (with `fallback`, when nothing is
    boxed) the answer phrase or last number, in Qwen2.5-Math's order (see the module doc)."""
    if not text:
        return None
    if fallback:
        m = _MINERVA_RE.search(text)
        if m is not None and m.group(1).strip():
            return m.group(1).strip()
    if _find_box_starts(text) or not fallback:
        return extract_boxed(text)
    for phrase in ANSWER_PHRASES:
        if phrase in text:
            return _phrase_answer(text.rsplit(phrase, 1)[1])
    numbers = _LAST_NUMBER_RE.findall(text.replace(",", ""))
    return numbers[-1] if numbers else None


def _answer_text(s: str) -> str:
    """The bare answer in `s`: a boxed answer if `s` holds one, else `s` minus surrounding `$`."""
    boxed = extract_boxed(s)
    if boxed is not None:
        return boxed.strip()
    return _strip_dollars(s)


def _timeout() -> int | None:
    """math-verify's signal-based timeout works only in the main thread; elsewhere pass None."""
    return DEFAULT_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def parse_answer(answer: str, timeout: int | None = None):
    """math-verify's parse of a bare answer, wrapped as `$\\boxed{...}$` so LaTeX such as
    `\\sqrt{4}` is recognised (math-verify only reads LaTeX inside math delimiters)."""
    from math_verify import parse

    return parse(f"$\\boxed{{{answer}}}$", parsing_timeout=timeout)


class MathGrader:
    """Outcome grader for MATH-style problems: last boxed answer (with the Qwen2.5-Math fallback
    when nothing is boxed, unless `answer_fallback=False`), math-verify equivalence."""

    name = "math"

    def __init__(self, answer_fallback: bool = True):
        self.answer_fallback = answer_fallback

    def extract_answer(self, text: str) -> str | None:
        return extract_math_answer(text, self.answer_fallback)

    def equivalent(self, a: str, b: str) -> bool:
        """Two final answers are one answer (math-verify), e.g. for grouping votes."""
        return self.is_correct(b, a)

    def is_correct(self, predicted: str | None, reference: str) -> bool:
        """True when math-verify judges `predicted` equivalent to `reference`.

        Either side may be a bare answer (`\\frac{1}{2}`, `0.5`), a `$...$` expression or a text
        holding a `\\boxed{...}` (whose last box is used). None or an empty prediction is incorrect;
        an answer math-verify cannot parse or a comparison that times out counts as incorrect.
        """
        if predicted is None or reference is None:
            return False
        pred, ref = _answer_text(str(predicted)), _answer_text(str(reference))
        if not pred or not ref:
            return False
        if pred == ref:
            return True
        from math_verify import verify

        timeout = _timeout()
        gold, target = parse_answer(ref, timeout), parse_answer(pred, timeout)
        if not gold or not target:
            return False
        return bool(verify(gold, target, timeout_seconds=timeout))


class BoxedMathGrader(MathGrader):
    """The MATH grader that reads boxed answers only (task `math-boxed`): no unboxed-answer fallback."""

    name = "math-boxed"

    def __init__(self):
        super().__init__(answer_fallback=False)
