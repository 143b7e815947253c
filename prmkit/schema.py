"""The one data model: Problem, Trace (ordered steps) and StepLabels, with JSONL and `datasets` I/O.

Every record carries `schema_version`. Step labels are floats in [0, 1] (soft labels stay floats),
`None` marks a step whose label is unknown (e.g. a tool checker that does not cover it), and
human ratings such as PRM800K's -1/0/+1 are kept verbatim in `StepLabels.ratings`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, TypeVar

from prmkit.errors import InputError
from prmkit.reading import DUPLICATE_RULES, decode_line, open_input, read_policy

SCHEMA_VERSION = 1


@dataclass
class Problem:
    """A task instance: `task` names the grader (`gym`, `gsm8k`, `math`)."""

    id: str
    prompt: str
    answer: str
    task: str = "gym"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepLabels:
    """Per-step labels and how they were made.

    values[i] in [0, 1] (1 = step i is good) or None (unknown); `ratings` keeps human ratings
    (PRM800K -1/0/1) verbatim; `rollouts` and `policy_tokens` record the labeling cost.
    """

    values: list[float | None]
    method: str
    ratings: list[int | None] | None = None
    rollouts: int = 0
    policy_tokens: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    """One solution to a problem, split into ordered steps.

    `outcome` is the graded final answer (1.0 right, 0.0 wrong, None ungraded); `first_error` is the
    gold index of the first wrong step (-1 = no wrong step, None = unknown).
    """

    problem_id: str
    prompt: str
    steps: list[str]
    final_answer: str | None = None
    outcome: float | None = None
    first_error: int | None = None
    labels: StepLabels | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return len(self.steps)


Record = TypeVar("Record", Problem, Trace)


# ---------------------------------------------------------------------------------------------
# validation: one function per record type; each raises InputError naming the field


def _check_type(value: Any, types: tuple[type, ...], fieldname: str, expected: str) -> None:
    if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
        raise InputError(f"expected {expected}, got {type(value).__name__} {value!r:.60}",
                         field=fieldname)


def validate_labels(labels: StepLabels, num_steps: int, prefix: str = "labels") -> None:
    _check_type(labels.values, (list,), f"{prefix}.values", "a list of floats in [0, 1] or null")
    if len(labels.values) != num_steps:
        raise InputError(f"expected one label per step ({num_steps}), got {len(labels.values)}",
                         field=f"{prefix}.values")
    for i, v in enumerate(labels.values):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not 0.0 <= v <= 1.0:
            raise InputError(f"expected a float in [0, 1] or null, got {v!r}", field=f"{prefix}.values[{i}]")
    if labels.ratings is not None:
        _check_type(labels.ratings, (list,), f"{prefix}.ratings", "a list of -1, 0, 1 or null")
        if len(labels.ratings) != num_steps:
            raise InputError(f"expected one rating per step ({num_steps}), got {len(labels.ratings)}",
                             field=f"{prefix}.ratings")
        for i, r in enumerate(labels.ratings):
            if r is not None and r not in (-1, 0, 1):
                raise InputError(f"expected -1, 0, 1 or null, got {r!r}", field=f"{prefix}.ratings[{i}]")
    _check_type(labels.method, (str,), f"{prefix}.method", "a string")
    for name in ("rollouts", "policy_tokens"):
        _check_type(getattr(labels, name), (int,), f"{prefix}.{name}", "an integer")
    _check_type(labels.meta, (dict,), f"{prefix}.meta", "a JSON object")


def validate_trace(t: Trace) -> None:
    _check_type(t.problem_id, (str,), "problem_id", "a string")
    _check_type(t.prompt, (str,), "prompt", "a string")
    _check_type(t.steps, (list,), "steps", "a list of strings")
    if not t.steps:
        raise InputError("expected at least one step, got an empty list", field="steps")
    for i, s in enumerate(t.steps):
        _check_type(s, (str,), f"steps[{i}]", "a string")
    if t.outcome is not None:
        _check_type(t.outcome, (int, float), "outcome", "a number in [0, 1] or null")
        if not 0.0 <= t.outcome <= 1.0:
            raise InputError(f"expected a number in [0, 1] or null, got {t.outcome!r}", field="outcome")
    if t.first_error is not None:
        _check_type(t.first_error, (int,), "first_error", "an integer step index, -1 or null")
        if not -1 <= t.first_error < len(t.steps):
            raise InputError(f"expected -1 or a step index < {len(t.steps)}, got {t.first_error}",
                             field="first_error")
    _check_type(t.meta, (dict,), "meta", "a JSON object")
    if t.labels is not None:
        validate_labels(t.labels, len(t.steps))


def validate_problem(p: Problem) -> None:
    for name in ("id", "prompt", "answer", "task"):
        _check_type(getattr(p, name), (str,), name, "a string")
    _check_type(p.meta, (dict,), "meta", "a JSON object")


# ---------------------------------------------------------------------------------------------
# dict conversion


def to_dict(record: Problem | Trace) -> dict[str, Any]:
    d = {"schema_version": SCHEMA_VERSION, "kind": type(record).__name__.lower()}
    d.update(dataclasses.asdict(record))
    return d


def _from_dict(cls: type[Record], d: dict[str, Any]) -> Record:
    if not isinstance(d, dict):
        raise InputError(f"expected a JSON object, got {type(d).__name__}")
    version = d.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise InputError(f"expected schema_version {SCHEMA_VERSION}, got {version!r}", field="schema_version")
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, f in names.items():
        if name in d:
            kwargs[name] = d[name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            raise InputError(f"missing required field (a {cls.__name__} needs {', '.join(_required(cls))})",
                             field=name)
    if cls is Trace and kwargs.get("labels") is not None:
        ld = kwargs["labels"]
        _check_type(ld, (dict,), "labels", 'an object such as {"values": [1.0, 0.0], "method": "mc"} or null')
        for req in ("values", "method"):
            if req not in ld:
                raise InputError("missing required field", field=f"labels.{req}")
        known = {f.name for f in dataclasses.fields(StepLabels)}
        kwargs["labels"] = StepLabels(**{k: v for k, v in ld.items() if k in known})
    rec = cls(**kwargs)
    (validate_trace if cls is Trace else validate_problem)(rec)  # type: ignore[operator]
    return rec


def _required(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]


def trace_from_dict(d: dict[str, Any]) -> Trace:
    return _from_dict(Trace, d)


def problem_from_dict(d: dict[str, Any]) -> Problem:
    return _from_dict(Problem, d)


# ---------------------------------------------------------------------------------------------
# JSONL


def iter_jsonl(path: str | os.PathLike, *, allow_empty: bool | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, parsed object) for each non-blank line; errors name the file and line.
    A file without a record is an InputError unless `allow_empty` (default: the read policy)."""
    seen = False
    with open_input(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = decode_line(raw, path, lineno)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"malformed JSON ({e.msg} at column {e.colno})", file=str(path),
                                 line=lineno) from None
            seen = True
            yield lineno, obj
    if not seen and not (read_policy().allow_empty if allow_empty is None else allow_empty):
        raise InputError("no records (the file is empty); pass --allow-empty to accept an empty input",
                         file=str(path))


def read_records(path: str | os.PathLike, cls: type[Record], *, allow_empty: bool | None = None) -> list[Record]:
    out = []
    for lineno, d in iter_jsonl(path, allow_empty=allow_empty):
        try:
            out.append(_from_dict(cls, d))
        except InputError as e:
            raise InputError(str(e), file=str(path), line=lineno) from None
    return out


def read_traces(path: str | os.PathLike, *, allow_empty: bool | None = None) -> list[Trace]:
    return read_records(path, Trace, allow_empty=allow_empty)


def read_problems(path: str | os.PathLike, *, allow_empty: bool | None = None,
                  on_duplicate: str | None = None) -> list[Problem]:
    """Problems in file order, one per id (see `ReadPolicy` for empty files and repeated ids)."""
    rule = read_policy().on_duplicate if on_duplicate is None else on_duplicate
    if rule not in DUPLICATE_RULES:
        raise InputError(f"expected one of {', '.join(DUPLICATE_RULES)}, got {rule!r}", field="on_duplicate")
    kept: dict[str, tuple[int, Problem]] = {}
    merged = replaced = 0
    for lineno, d in iter_jsonl(path, allow_empty=allow_empty):
        try:
            p = _from_dict(Problem, d)
        except InputError as e:
            raise InputError(str(e), file=str(path), line=lineno) from None
        if p.id not in kept:
            kept[p.id] = (lineno, p)
            continue
        first_line, first = kept[p.id]
        if first == p:
            merged += 1
            continue
        if rule == "error":
            differ = [f.name for f in dataclasses.fields(Problem) if getattr(first, f.name) != getattr(p, f.name)]
            raise InputError(f"problem id {p.id!r} was already given on line {first_line} with a different "
                             f"{', '.join(differ)}; pass --on-duplicate first|last to choose which wins",
                             file=str(path), line=lineno, field="id")
        replaced += 1
        if rule == "last":
            kept[p.id] = (first_line, p)
    if merged or replaced:
        _notice(f"{path}: {merged} identical repeated problem id(s) merged"
                + (f", {replaced} conflicting one(s) resolved by --on-duplicate {rule}" if replaced else ""))
    return [p for _, p in kept.values()]


def _notice(message: str) -> None:
    import sys

    print(f"note: {message}", file=sys.stderr)


def _new_file_mode(path: Path) -> int:
    """The mode a plain `open(path, "w")` would leave: an existing file's own, else 0o666 less the
    umask (read from /proc where it can be, so the process umask is never changed, even briefly)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> None:
    """Call `write(fh)` on a temp file beside `path`, fsync, then rename: readers never see half a file
    and a kill leaves no partial one. The file gets the permissions a plain write would give it
    (mkstemp's own are 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # name the directory that refused the file, not the temp file's random name
        raise type(e)(e.errno, e.strerror, str(path.parent)) from None
    try:
        os.chmod(tmp, mode)
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically (`atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(text))


def finite_or_null(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, +-inf) replaced by None, recursively through dicts,
    lists and tuples, so it serialises as strict JSON (`json.dumps(..., allow_nan=False)`)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def dumps_strict_json(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON text (no bare NaN/Infinity: non-finite numbers become null), newline-terminated."""
    return json.dumps(finite_or_null(obj), indent=indent, allow_nan=False) + "\n"


def dumps_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Atomically write plain dicts as JSONL."""
    atomic_write_text(path, dumps_jsonl(rows))


def write_records(path: str | os.PathLike, records: Iterable[Problem | Trace]) -> None:
    """Validate every record, then write them atomically; on a bad record nothing is written."""
    rows = []
    for i, r in enumerate(records):
        try:
            validate_trace(r) if isinstance(r, Trace) else validate_problem(r)
        except InputError as e:
            raise InputError(str(e), file=str(path), line=i + 1) from None
        rows.append(to_dict(r))
    write_jsonl(path, rows)


# ---------------------------------------------------------------------------------------------
# datasets


def to_dataset(records: list[Problem] | list[Trace]):
    """A `datasets.Dataset` with one row per record; nested fields are stored as JSON strings so
    that None-valued labels and free-form meta survive Arrow's typing."""
    import datasets

    if not records:
        return datasets.Dataset.from_dict({})
    json_cols = _JSON_COLUMNS[type(records[0])]
    rows = [to_dict(r) for r in records]
    cols = {k: [json.dumps(r[k], ensure_ascii=False) if k in json_cols else r[k] for r in rows] for k in rows[0]}
    return datasets.Dataset.from_dict(cols)


def from_dataset(ds, cls: type[Record]) -> list[Record]:
    out = []
    for i, row in enumerate(ds):
        d = {}
        for k, v in row.items():
            d[k] = json.loads(v) if k in _JSON_COLUMNS[cls] else v
        try:
            out.append(_from_dict(cls, d))
        except InputError as e:
            raise InputError(str(e), line=i + 1) from None
    return out


_JSON_COLUMNS = {
    Trace: ("steps", "labels", "meta", "final_answer", "outcome", "first_error"),
    Problem: ("meta",),
}
