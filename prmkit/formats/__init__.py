"""Converters between public process-supervision formats and prmkit Traces.

    FORMATS[name] = Format(to_traces, from_traces)
    convert("prm800k.jsonl", "prm800k", "trl.jsonl", "trl", neutral="positive")

Every converter module (`trl`, `prm800k`, `math_shepherd`, `processbench`, `gsm8k`) exposes
`record_to_trace`, `trace_to_record` and the list-level `records_to_traces` / `traces_to_records`.
Whatever a format holds that the Trace schema has no field for is kept under `trace.meta[<format>]`,
so record -> Trace -> record is the identity. `prmkit` (alias `internal`) names the schema's own
Trace JSONL. Two conversions are not 1 record : 1 trace: `convert_problems` (datasets -> Problem
records, `formats/problems.py`) and `convert_prm800k_trl_rows` (TRL's own PRM800K mapping, one row
per alternative completion). No conversion writes over its input.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from prmkit.errors import InputError
from prmkit.schema import Trace, atomic_write_text, dumps_jsonl, iter_jsonl, to_dict, trace_from_dict

from prmkit.formats._fields import (_located, check_trace, extra_fields, get_field, map_records,  # noqa: F401
                                    prompt_id)
# ---------------------------------------------------------------------------------------------
# the schema's own Trace JSONL as a format


def _prmkit_to_traces(records: Sequence[dict[str, Any]], *, lines: Sequence[int] | None = None) -> list[Trace]:
    def one(d: dict[str, Any], *, line: int) -> Trace:
        try:
            return trace_from_dict(d)
        except InputError as e:
            raise _located(e, line=line) from None

    return map_records(one, records, lines)


def _prmkit_from_traces(traces: Sequence[Trace], *, lines: Sequence[int] | None = None) -> list[dict[str, Any]]:
    def one(t: Trace, *, line: int) -> dict[str, Any]:
        check_trace(t, line)
        return to_dict(t)

    return map_records(one, traces, lines)


# ---------------------------------------------------------------------------------------------
# registry

from prmkit.formats import gsm8k, math_shepherd, prm800k, processbench, trl


class Format(NamedTuple):
    to_traces: Callable[..., list[Trace]]  # (records, *, lines=None, **options) -> traces
    from_traces: Callable[..., list[dict[str, Any]]]  # (traces, *, lines=None, **options) -> records


FORMATS: dict[str, Format] = {
    "prmkit": Format(_prmkit_to_traces, _prmkit_from_traces),
    "trl": Format(trl.records_to_traces, trl.traces_to_records),
    "prm800k": Format(prm800k.records_to_traces, prm800k.traces_to_records),
    "math_shepherd": Format(math_shepherd.records_to_traces, math_shepherd.traces_to_records),
    "processbench": Format(processbench.records_to_traces, processbench.traces_to_records),
    "gsm8k": Format(gsm8k.records_to_traces, gsm8k.traces_to_records),
}


ALIASES = {"internal": "prmkit"}  # `prmkit convert`'s documented name for the schema's own JSONL


def get_format(name: str) -> Format:
    name = ALIASES.get(name, name)
    if name not in FORMATS:
        hint = ""
        from prmkit.formats.problems import SOURCES

        if name in SOURCES:
            hint = f" ({name!r} is a problem source: convert it with target 'problems')"
        raise InputError(f"unknown format {name!r}; expected one of {sorted(FORMATS)}{hint}", field="format")
    return FORMATS[name]


# ---------------------------------------------------------------------------------------------
# files


def read_json_records(path: str | os.PathLike) -> list[tuple[int, dict[str, Any]]]:
    """(position, object) pairs from a JSONL file, a JSON array file (as the ProcessBench hub files
    are), a `.parquet` file or a `save_to_disk` directory (Hugging Face datasets). Positions are file
    line numbers for JSONL and 1-based row numbers otherwise, so errors can name them."""
    if Path(path).is_dir():
        return _saved_dataset_records(path)
    if str(path).endswith(".parquet"):  # e.g. a Hugging Face dataset's parquet shard
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist(), 1))
    with open(path, encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("["):
        with open(path, encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as e:
                raise InputError(f"malformed JSON ({e.msg} at line {e.lineno} column {e.colno})",
                                 file=str(path)) from None
        return list(enumerate(data, 1))
    return list(iter_jsonl(path))


def _saved_dataset_records(path: str | os.PathLike) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a Hugging Face dataset saved with `save_to_disk` (one split's directory)."""
    import datasets

    from prmkit.reading import load_saved_dataset

    ds = load_saved_dataset(path)
    if isinstance(ds, datasets.DatasetDict):
        raise InputError(f"a dataset with splits {sorted(ds)}: pass one split's directory, e.g. "
                         f"{Path(path) / 'train'}", file=str(path))
    return list(enumerate(ds.to_list(), 1))


def write_json_records(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> None:
    """Atomically write rows as a JSON array when `path` ends in `.json`, else as JSONL."""
    if str(path).endswith(".json"):
        atomic_write_text(path, json.dumps(list(rows), ensure_ascii=False, indent=1) + "\n")
    else:
        atomic_write_text(path, dumps_jsonl(rows))


def _records(path: str | os.PathLike) -> list[tuple[int, dict[str, Any]]]:
    """`read_json_records`, refusing an input with no records (an empty conversion is never the intent)."""
    pairs = read_json_records(path)
    if not pairs:
        raise InputError("the input holds no records (expected JSONL lines or a non-empty JSON array)",
                         file=str(path))
    return pairs


def refuse_same_path(in_path: str | os.PathLike, out_path: str | os.PathLike) -> None:
    """InputError when the output would overwrite the input (compared after resolving links and `..`)."""
    src, dst = Path(in_path).resolve(), Path(out_path).resolve()
    if src == dst or (dst.exists() and src.exists() and os.path.samefile(src, dst)):
        raise InputError(f"the output is the input file ({src}); write to another path", file=str(out_path),
                         field="output")


def _split_options(options: dict[str, Any], *fns: Callable[..., Any]) -> list[dict[str, Any]]:
    """Give each function the options its signature names; an option no function takes is an error."""
    accepted = [{p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind is p.KEYWORD_ONLY and p.name != "lines"} for fn in fns]
    unknown = sorted(set(options) - set().union(*accepted))
    if unknown:
        raise InputError(f"unknown option(s) {unknown}; expected some of {sorted(set().union(*accepted))}",
                         field="options")
    return [{k: v for k, v in options.items() if k in names} for names in accepted]


def load_traces(path: str | os.PathLike, fmt: str, **options: Any) -> list[Trace]:
    """Traces from a `fmt` file (JSONL or a JSON array); errors name the file, line and field."""
    pairs = read_json_records(path)
    try:
        return get_format(fmt).to_traces([r for _, r in pairs], lines=[line for line, _ in pairs], **options)
    except InputError as e:
        raise _located(e, file=str(path)) from None


def save_traces(traces: Sequence[Trace], path: str | os.PathLike, fmt: str, **options: Any) -> int:
    """Write traces as `fmt` records, atomically (all or nothing); returns the number written."""
    try:
        rows = get_format(fmt).from_traces(traces, **options)
    except InputError as e:
        raise _located(e, file=str(path)) from None
    write_json_records(path, rows)
    return len(rows)


def convert(in_path: str | os.PathLike, in_format: str, out_path: str | os.PathLike, out_format: str,
            **options: Any) -> int:
    """Read `in_path` (JSONL or a JSON array) as `in_format`, write `out_path` as `out_format`.

    Options go to whichever side names them (e.g. `neutral=` to PRM800K reading, `label_type=` to
    TRL writing); an option neither side takes is an error. The output is written atomically, so on
    any error no (partial) file is left. Errors name the input file and line. Returns the number of
    records written.
    """
    return convert_counted(in_path, in_format, out_path, out_format, **options)[0]


def convert_counted(in_path: str | os.PathLike, in_format: str, out_path: str | os.PathLike, out_format: str,
                    *, skip_empty_paths: bool = False, **options: Any) -> tuple[int, int]:
    """`convert`, returning (written, skipped). `skip_empty_paths` (PRM800K only) leaves out the
    lines whose labeled path has no step (e.g. a step with `completions: null`, or an unchosen
    step, first): a Trace needs a step, so without it such a line is an error naming it."""
    refuse_same_path(in_path, out_path)
    source, target = get_format(in_format), get_format(out_format)
    in_opts, out_opts = _split_options(options, source.to_traces, target.from_traces)
    pairs = _records(in_path)
    total = len(pairs)
    try:
        if skip_empty_paths:
            if ALIASES.get(in_format, in_format) != "prm800k":
                raise InputError("skip_empty_paths applies to PRM800K input only", field="skip_empty_paths")
            pairs = [(n, r) for n, r in pairs if prm800k.chosen_path(r, n)]
        lines = [line for line, _ in pairs]
        traces = source.to_traces([r for _, r in pairs], lines=lines, **in_opts)
        rows = target.from_traces(traces, lines=lines, **out_opts)  # every format maps 1 record : 1 trace
    except InputError as e:
        raise _located(e, file=str(in_path)) from None
    if not rows:
        raise InputError(f"nothing to write: all {total} records were skipped", file=str(in_path))
    write_json_records(out_path, rows)
    return len(rows), total - len(pairs)


def convert_problems(in_path: str | os.PathLike, source: str, out_path: str | os.PathLike,
                     **fields: str) -> tuple[int, int]:
    """Problem records from a dataset file (`formats/problems.py`); returns (written, skipped)."""
    from prmkit.formats.problems import problems_from_records
    from prmkit.schema import write_records

    refuse_same_path(in_path, out_path)
    pairs = _records(in_path)
    try:
        problems, skipped = problems_from_records(source, [r for _, r in pairs], [n for n, _ in pairs], **fields)
    except InputError as e:
        raise _located(e, file=str(in_path)) from None
    if not problems:
        raise InputError("no problems to write (every problem was skipped or the file is empty)",
                         file=str(in_path))
    write_records(out_path, problems)
    return len(problems), skipped


def convert_prm800k_trl_rows(in_path: str | os.PathLike, out_path: str | os.PathLike, *,
                             neutral: str = "unknown") -> tuple[int, int]:
    """TRL stepwise rows from a PRM800K file by TRL's own mapping (`prm800k.trl_rows`); returns
    (rows written, rows with no steps: the path row of a line whose first step ended it, as TRL
    writes it)."""
    refuse_same_path(in_path, out_path)
    pairs = _records(in_path)
    try:
        rows = prm800k.records_to_trl_rows([r for _, r in pairs], lines=[n for n, _ in pairs], neutral=neutral)
    except InputError as e:
        raise _located(e, file=str(in_path)) from None
    write_json_records(out_path, rows)
    return len(rows), sum(1 for row in rows if not row["completions"])


__all__ = ["FORMATS", "Format", "convert", "convert_counted", "convert_problems", "convert_prm800k_trl_rows", "get_format",
           "refuse_same_path", "load_traces", "save_traces", "read_json_records",
           "write_json_records",
           "gsm8k", "math_shepherd", "prm800k", "processbench", "trl"]
