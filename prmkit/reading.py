"""Opening users' input files: a missing file, a directory, an unreadable path or a non-UTF-8 byte
is an InputError naming the file (and line); and the readers' policy for empty inputs and repeated
problem ids, which the CLI sets from `--allow-empty` / `--on-duplicate`."""

from __future__ import annotations

import os
import re
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


# --------------------------------------------------------------------------- model names: local dir or hub id

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_hub_id(name: str) -> bool:
    """`org/name` with hub characters (no leading '.', '/', '~', one slash)."""
    return bool(_HUB_ID.match(name)) and ".." not in name


def looks_local(name: str) -> bool:
    """A name meant as a local path: starts with '.', '/' or '~', has no `org/name` hub shape, or is
    `a/b` where `a` exists here (a path that exists partially)."""
    if name.startswith((".", "/", "~")) or not is_hub_id(name):
        return True
    return Path(name).parent.exists()


def check_model_name(name: str, option: str, what: str = "a model") -> str:
    """`name` if it is an existing local dir or a hub id; a local-looking missing path (or a file) is an
    InputError at once, naming the option, so no hub request is tried for a typo."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise InputError(f"expected a directory holding {what}, got a file", file=name, field=option)
    if looks_local(name):
        raise InputError(f"no such directory (expected {what}: a local dir, or a hub id of the form org/name)",
                         file=name, field=option)
    return name


def load_saved_dataset(path: str | os.PathLike):
    """`datasets.load_from_disk` with its failures named: no dataset there, or an empty one (which
    `datasets` itself cannot load)."""
    import datasets

    try:
        return datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise InputError("expected a file, or a directory written by datasets' save_to_disk", file=str(path)) from None
    except IndexError:
        raise InputError("a dataset directory with no rows (datasets cannot load an empty save_to_disk dataset)",
                         file=str(path)) from None
