"""GSM8K outcome grader: a numeric final answer, compared exactly.

The final answer is the number after the last `####` marker when there is one (GSM8K's own
format), otherwise the last number written anywhere in the text. Numbers may carry a `$`, thousands
commas, a sign and trailing words or punctuation ("$1,234.50 dollars." -> "1234.5"); answers are
compared as exact rationals, so 18 == 18.0 == "$18".
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

# A number token: optional sign (only when not glued to a preceding word/number, so the minus in
# "10-5" is an operator), optional `$` on either side of the sign, then digits with thousands
# commas, plain digits, or a bare decimal (".5").
NUMBER_RE = re.compile(
    r"(?:(?<![\w)\].])(?P<sign>-)\$?|\$)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
)
MARKER = "####"


def _canonical(sign: str | None, num: str) -> str:
    """Canonical decimal text of a matched number: no commas, no trailing zeros, no '-0'."""
    value = Decimal(num.replace(",", ""))
    if sign:
        value = -value
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def find_numbers(text: str) -> list[str]:
    """Every number in `text`, in order, in canonical form ("$1,234.50" -> "1234.5")."""
    return [_canonical(m.group("sign"), m.group("num")) for m in NUMBER_RE.finditer(text)]


def extract_answer(text: str) -> str | None:
    """The final answer of a GSM8K-style solution, canonicalised, or None.

    With a `####` marker the answer is the first number after the last marker (None if nothing
    numeric follows it: the marker declares the answer, so no earlier number is guessed);
    without one it is the last number in the text.
    """
    if text is None:
        return None
    text = text.replace("\u2212", "-")  # unicode minus sign
    if MARKER in text:
        numbers = find_numbers(text.rsplit(MARKER, 1)[1])
        return numbers[0] if numbers else None
    numbers = find_numbers(text)
    return numbers[-1] if numbers else None


def to_fraction(answer: str | None) -> Fraction | None:
    """The exact value of an answer string (any text `extract_answer` accepts), or None."""
    if answer is None:
        return None
    number = extract_answer(str(answer))
    if number is None:
        return None
    try:
        return Fraction(Decimal(number))
    except (InvalidOperation, ValueError):  # pragma: no cover - the regex only yields decimals
        return None


class GSM8KGrader:
    """Numeric outcome grader for GSM8K: exact rational equality of the final numbers."""

    name = "gsm8k"

    def extract_answer(self, text: str) -> str | None:
        return extract_answer(text)

    def is_correct(self, predicted: str | None, reference: str) -> bool:
        """True when both sides hold a number and the numbers are equal exactly.

        Either side may be a bare number ("18", "18.0", "$18") or a full solution ending in
        `#### 18`; a missing or non-numeric prediction is incorrect.
        """
        if predicted is None:
            return False
        p, r = to_fraction(predicted), to_fraction(reference)
        return p is not None and r is not None and p == r

    def equivalent(self, a: str, b: str) -> bool:
        """Two final answers are one answer: the same normalised number, or the same text."""
        if a == b:
            return True
        fa, fb = to_fraction(a), to_fraction(b)
        return fa is not None and fa == fb
