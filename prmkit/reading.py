"""Opening users' input files: a missing file, a directory, an unreadable path or a non-UTF-8 byte
is an InputError naming the file (and line); and the readers' policy for empty inputs and repeated
problem ids, which the CLI sets from `--allow-empty` / `--on-duplicate`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from prmkit.errors import InputError


@dataclass(frozen=True)
class ReadPolicy:
    """What the record readers do with an empty input and with problems that share an id.

    `allow_empty`: an input with no records is an error unless True. `on_duplicate`: "error" (a
    problem id that appears twice with different content is refused), "first" or "last" (that copy
    wins, with a notice). Identical copies are merged with a notice whatever the setting. The CLI
    sets this from `--allow-empty` / `--on-duplicate`; library callers may pass both explicitly."""

    allow_empty: bool = False
    on_duplicate: str = "error"


DUPLICATE_RULES = ("error", "first", "last")
_policy = ReadPolicy()


def set_read_policy(policy: ReadPolicy) -> ReadPolicy:
    """Make `policy` the readers' default; returns the previous one (to restore it)."""
    global _policy
    if policy.on_duplicate not in DUPLICATE_RULES:
        raise InputError(f"expected one of {', '.join(DUPLICATE_RULES)}, got {policy.on_duplicate!r}",
                         field="on_duplicate")
    previous, _policy = _policy, policy
    return previous


def read_policy() -> ReadPolicy:
    return _policy


def open_input(path: str | os.PathLike):
    """Open a user's input file for binary reading; a missing file, a directory or an unreadable
    path is an InputError naming it."""
    p = Path(path)
    if p.is_dir():
        raise InputError("is a directory; expected a file", file=str(path))
    try:
        return open(p, "rb")
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except OSError as e:
        raise InputError(f"cannot read it ({e.strerror or e})", file=str(path)) from None


def decode_line(raw: bytes, path: str | os.PathLike, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(raw, e.start, path, lineno) from None


def _not_utf8(raw: bytes, pos: int, path: str | os.PathLike, lineno: int) -> InputError:
    column = pos - (raw.rfind(b"\n", 0, pos) + 1) + 1
    return InputError(f"not UTF-8 text (byte 0x{raw[pos]:02x} at column {column}); expected UTF-8 JSON",
                      file=str(path), line=lineno)


def read_input_text(path: str | os.PathLike) -> str:
    """A user's whole input file as text; errors name the file (and the line of a non-UTF-8 byte)."""
    with open_input(path) as fh:
        raw = fh.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(raw, e.start, path, raw.count(b"\n", 0, e.start) + 1) from None
