"""Field access, validation and location helpers shared by the format converters."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable, Sequence

from prmkit.errors import InputError
from prmkit.schema import Trace, validate_trace

# ---------------------------------------------------------------------------------------------
# helpers shared by the converter modules

def get_field(record: Any, key: str, types: type | tuple[type, ...], expected: str, *,
              line: int | None = None, prefix: str = "") -> Any:
    """`record[key]`, checked: InputError names the line, the field (`prefix + key`) and what was
    expected. Bools never pass as numbers."""
    name = prefix + key
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}", line=line,
                         field=prefix.rstrip(".") or None)
    if key not in record:
        raise InputError(f"missing required field (expected {expected})", line=line, field=name)
    value = record[key]
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise InputError(f"expected {expected}, got {type(value).__name__} {value!r:.60}", line=line,
                         field=name)
    return value


def extra_fields(record: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """The record's keys a converter does not map, kept in meta so they round-trip."""
    known = set(known)
    return {k: v for k, v in record.items() if k not in known}


def map_records(fn: Callable[..., Any], items: Sequence[Any], lines: Sequence[int] | None,
                **options: Any) -> list[Any]:
    """`[fn(item, line=line, **options)]`; `lines` defaults to 1, 2, ... (record positions)."""
    lines = list(lines) if lines is not None else list(range(1, len(items) + 1))
    if len(lines) != len(items):
        raise InputError(f"expected one line number per record ({len(items)}), got {len(lines)}",
                         field="lines")
    return [fn(item, line=line, **options) for item, line in zip(items, lines)]


def prompt_id(prefix: str, prompt: str) -> str:
    """A stable problem id from the prompt text, so several solutions of one problem share it."""
    return f"{prefix}-{hashlib.sha1(prompt.encode('utf-8')).hexdigest()[:12]}"


def check_trace(trace: Trace, line: int | None) -> None:
    """validate_trace, with the error located at `line`."""
    if not isinstance(trace, Trace):
        raise InputError(f"expected a Trace, got {type(trace).__name__}", line=line)
    try:
        validate_trace(trace)
    except InputError as e:
        raise _located(e, line=line) from None


def _located(e: InputError, *, file: str | None = None, line: int | None = None) -> InputError:
    """`e` with the file (and the line, if `e` has none yet) named in front of its message."""
    out = InputError(str(e), file=file, line=line if e.line is None else None)
    out.line = e.line if e.line is not None else line
    out.field = e.field
    return out


