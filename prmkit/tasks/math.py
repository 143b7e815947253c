"""MATH outcome grader: the last `\\boxed{...}` answer, judged equivalent by math-verify.

    grader = MathGrader()
    grader.extract_answer(r"... so $\\boxed{\\frac{1}{2}}$.")   # -> "\\frac{1}{2}"
    grader.is_correct(r"\\frac{1}{2}", "0.5")                    # -> True

math-verify bounds its own parsing and comparison time with `signal.alarm`, which only works in the
main thread of the main interpreter. In the main thread the grader passes a timeout (default 5 s);
elsewhere (a thread pool, a data-loader worker thread) it passes None, so math-verify runs without
a time limit and the caller is responsible for bounding it (e.g. grade in a subprocess).
"""

from __future__ import annotations

import threading

BOX_COMMANDS = ("\\boxed", "\\fbox")
DEFAULT_TIMEOUT_S = 5


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


def _answer_text(s: str) -> str:
    """The bare answer in `s`: a boxed answer if `s` holds one, else `s` minus surrounding `$`."""
    boxed = extract_boxed(s)
    if boxed is not None:
        return boxed.strip()
    s = s.strip()
    while len(s) >= 2 and s.startswith("$") and s.endswith("$") and not s.endswith("\\$"):
        s = s[1:-1].strip()
    return s


def _timeout() -> int | None:
    """math-verify's signal-based timeout works only in the main thread; elsewhere pass None."""
    return DEFAULT_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def parse_answer(answer: str, timeout: int | None = None):
    """math-verify's parse of a bare answer, wrapped as `$\\boxed{...}$` so LaTeX such as
    `\\sqrt{4}` is recognised (math-verify only reads LaTeX inside math delimiters)."""
    from math_verify import parse

    return parse(f"$\\boxed{{{answer}}}$", parsing_timeout=timeout)


class MathGrader:
    """Outcome grader for MATH-style problems: last boxed answer, math-verify equivalence."""

    name = "math"

    def extract_answer(self, text: str) -> str | None:
        return extract_boxed(text)

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
