"""One error type for bad input, so every message names where the problem is."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: names the file, the line or record, the field, and what was expected."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        where = []
        if file is not None:
            where.append(str(file))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        self.file, self.line, self.field = file, line, field
        super().__init__((": ".join([", ".join(where), message])) if where else message)


# ---------------------------------------------------------------------------------------------
# the CLI's error boundary: an expected failure becomes one line; anything else stays a bug


def expected_failure(exc: BaseException) -> str | None:
    """One line naming what failed and where, for a failure the user can fix (bad input, a missing
    or unreadable file, a bad output location, a model that cannot be loaded); None for anything
    else, which is a bug and keeps its traceback."""
    if isinstance(exc, InputError):
        return _one_line(str(exc))
    model = _frame_local(exc, "pretrained_model_name_or_path")
    if type(exc).__name__ == "SafetensorError":  # safetensors' own error type, from its Rust core
        where = _innermost_str(exc, ("checkpoint_path", "checkpoint_file", "file", "filename")) or model
        return _one_line(f"{where or 'a safetensors file'}: unreadable weights file ({exc}); "
                         "expected a complete .safetensors file (is it truncated?)")
    if isinstance(exc, UnicodeDecodeError):
        where = _open_file_name(exc)
        return _one_line(f"{where or 'an input file'}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                         f"at offset {exc.start}); expected UTF-8")
    if isinstance(exc, OSError):
        return _os_error(exc, model)
    return None


def _os_error(exc: OSError, model: object) -> str:
    import os

    name = exc.filename if exc.filename is not None else None
    if name is not None:
        what = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError):
            what += " (a file is in the way: a directory was expected here)"
        elif isinstance(exc, NotADirectoryError):
            what += " (part of the path is a file, not a directory)"
        elif isinstance(exc, PermissionError):
            what += " (choose a location you can write to, or fix its permissions)"
        return _one_line(f"{name}: {what}")
    if isinstance(model, (str, os.PathLike)):
        text = str(model)
        looks_local = text.startswith(("/", ".", "~")) or text.count("/") > 1 or os.sep != "/" and os.sep in text
        if looks_local and not os.path.exists(os.path.expanduser(text)):
            return _one_line(f"model '{text}': no such local directory (and it is not a hub id "
                             "of the form 'name' or 'owner/name')")
        return _one_line(f"model '{text}': cannot be loaded: {exc}")
    return _one_line(str(exc))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _frames(exc: BaseException):
    tb = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _frame_local(exc: BaseException, name: str) -> object | None:
    """The outermost value of local variable `name` among the frames `exc` passed through (the
    path a loader was called with, where the loader's own frames are still on the traceback)."""
    for frame in _frames(exc):
        if name in frame.f_locals and frame.f_locals[name] is not None:
            return frame.f_locals[name]
    return None


def _innermost_str(exc: BaseException, names: tuple[str, ...]) -> str | None:
    found = None
    for frame in _frames(exc):
        for name in names:
            if isinstance(frame.f_locals.get(name), str):
                found = frame.f_locals[name]
    return found


def _open_file_name(exc: BaseException) -> str | None:
    """The name of the innermost text file being read when a decode failed."""
    import io

    found = None
    for frame in _frames(exc):
        for value in frame.f_locals.values():
            if isinstance(value, io.TextIOWrapper) and isinstance(getattr(value, "name", None), str):
                found = value.name
    return found
