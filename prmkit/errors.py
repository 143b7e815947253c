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
