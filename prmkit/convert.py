"""`prmkit convert`: convert between prmkit's schema and the field's step-level formats, and turn
datasets (GSM8K, MATH, ProcessBench, PRM800K, any file with named columns) into problems."""

from __future__ import annotations

from dataclasses import dataclass

ROWS = ("path", "alternatives")
TRAILING_UNKNOWN = ("auto", "refuse", "drop")


@dataclass
class ConvertConfig:
    """Convert step-level formats (prmkit, trl, prm800k, math_shepherd, processbench, gsm8k); datasets to problems."""

    input: str = ""
    """input file (JSONL, a JSON array as ProcessBench ships, or a .parquet dataset shard)"""
    source: str = "gsm8k"
    """input format: prmkit, trl, prm800k, math_shepherd, processbench, gsm8k; for --target problems also
    math (hendrycks/math records) and columns (any records with named columns, see --problem-field)"""
    output: str = ""
    """output path (JSONL; a JSON array when it ends in .json), written atomically; never the input"""
    target: str = "prmkit"
    """output format: prmkit (alias internal: prmkit's Trace JSONL), trl, prm800k, math_shepherd,
    processbench, gsm8k, or problems (Problem records with id, prompt, answer, task)"""
    neutral: str = "unknown"
    """PRM800K neutral (0) ratings become: unknown (null label), positive (1.0) or negative (0.0; TRL's
    examples/datasets/prm800k.py maps 0 to False)"""
    rows: str = "path"
    """prm800k -> trl: path (one row per line: the labeler's path) or alternatives (TRL's
    examples/datasets/prm800k.py: one row per rated alternative completion, plus the path)"""
    trailing_unknown: str = "auto"
    """-> trl: steps after the last known label: refuse, or drop them (end the row there); auto = drop for
    --source processbench (it labels no step after the first error), else refuse"""
    skip_empty_paths: bool = False
    """--source prm800k: leave out (and count) lines whose labeled path has no step (a first step with
    null completions or none chosen); without it such a line is an error"""
    problem_field: str = ""
    """--source columns: the column holding the problem text"""
    answer_field: str = ""
    """--source columns: the column holding the reference answer"""
    id_field: str = ""
    """--source columns: the column holding a problem id (empty: <task>-<record index>)"""
    task: str = ""
    """--source columns: the grader of these problems (gsm8k, math, gym)"""


def run(cfg: ConvertConfig) -> int:
    from prmkit.errors import InputError
    from prmkit.formats import convert_counted, refuse_same_path

    if not cfg.input or not cfg.output:
        raise InputError("both --input and --output are required", field="input")
    _check_options(cfg)
    refuse_same_path(cfg.input, cfg.output)
    if cfg.target == "problems":
        return _problems(cfg)
    if cfg.rows == "alternatives":
        from prmkit.formats import convert_prm800k_trl_rows

        n, empty = convert_prm800k_trl_rows(cfg.input, cfg.output, neutral=cfg.neutral)
        note = f"; {empty} path rows have no steps (the line's first step ended it), as TRL writes them" * bool(empty)
        print(f"converted {cfg.source} -> {n} TRL rows (TRL's PRM800K mapping: alternatives and the path; "
              f"0 ratings -> {cfg.neutral}{note}): {cfg.output}")
        return n
    options: dict = {"neutral": cfg.neutral} if cfg.source == "prm800k" else {}
    if cfg.target == "trl":
        drop = cfg.trailing_unknown == "drop" or (cfg.trailing_unknown == "auto" and cfg.source == "processbench")
        options["trailing_unknown"] = "drop" if drop else "refuse"
    n, skipped = convert_counted(cfg.input, cfg.source, cfg.output, cfg.target,
                                 skip_empty_paths=cfg.skip_empty_paths, **options)
    note = f" (skipped {skipped} lines whose labeled path has no step)" if skipped else ""
    if options.get("trailing_unknown") == "drop":
        note += " (rows end at their last labelled step: ProcessBench labels no step after the first error)"
    print(f"converted {n} records {cfg.source} -> {cfg.target}: {cfg.output}{note}")
    return n


def _problems(cfg: ConvertConfig) -> int:
    from prmkit.formats import convert_problems

    fields = ({"problem_field": cfg.problem_field, "answer_field": cfg.answer_field, "id_field": cfg.id_field,
               "task": cfg.task} if cfg.source == "columns" else {})
    n, skipped = convert_problems(cfg.input, cfg.source, cfg.output, **fields)
    note = f"; skipped {skipped} with no correct sample to take the answer from" if skipped else ""
    print(f"wrote {n} problems from {cfg.source} to {cfg.output}{note}")
    return n


def _check_options(cfg: ConvertConfig) -> None:
    """Every option that the chosen conversion would not use is an error, not silently ignored."""
    from prmkit.errors import InputError

    if cfg.rows not in ROWS:
        raise InputError(f"expected one of {list(ROWS)}, got {cfg.rows!r}", field="rows")
    if cfg.trailing_unknown not in TRAILING_UNKNOWN:
        raise InputError(f"expected one of {list(TRAILING_UNKNOWN)}, got {cfg.trailing_unknown!r}",
                         field="trailing_unknown")
    if cfg.rows == "alternatives" and (cfg.source, cfg.target) != ("prm800k", "trl"):
        raise InputError("--rows alternatives is TRL's PRM800K mapping: it needs --source prm800k --target trl",
                         field="rows")
    if cfg.trailing_unknown != "auto" and cfg.target != "trl":
        raise InputError("--trailing-unknown applies to --target trl", field="trailing_unknown")
    if cfg.skip_empty_paths and (cfg.source != "prm800k" or cfg.target == "problems" or cfg.rows == "alternatives"):
        raise InputError("--skip-empty-paths applies to --source prm800k converted to traces (--rows path)",
                         field="skip_empty_paths")
    if cfg.neutral != "unknown" and cfg.source != "prm800k":
        raise InputError("--neutral maps PRM800K's 0 ratings: it needs --source prm800k", field="neutral")
    columns = {"problem_field": cfg.problem_field, "answer_field": cfg.answer_field, "id_field": cfg.id_field,
               "task": cfg.task}
    given = [k for k, v in columns.items() if v]
    if given and cfg.source != "columns":
        raise InputError(f"--{given[0].replace('_', '-')} names a column of --source columns; the {cfg.source} "
                         "source reads its own fields", field=given[0])
    if cfg.source in ("columns", "math") and cfg.target != "problems":
        raise InputError(f"--source {cfg.source} is a problem source: use --target problems", field="target")
