"""Argument checks of the label rules (`prmkit.label.rules`): each returns the value or raises
`InputError` (a ValueError) naming the field and what was expected."""

from __future__ import annotations

import math
from typing import Any

from prmkit.errors import InputError


def check_int(value: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"expected an int, got {value!r}", field=field)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise InputError(f"expected an int in {span}, got {value}", field=field)
    return value


def check_real(value: Any, field: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InputError(f"expected a number, got {value!r}", field=field)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InputError(f"expected a number in [{lo}, {hi}], got {value}", field=field)
    return float(value)


def check_prob(value: Any, field: str) -> float:
    return check_real(value, field, 0.0, 1.0)


def check_first_error(first_error: Any, num_steps: int, field: str = "first_error") -> int:
    return check_int(first_error, field, -1, num_steps - 1)
