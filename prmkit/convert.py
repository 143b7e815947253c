"""`prmkit convert`: convert between prmkit's schema and the field's step-level formats."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ConvertConfig:
    """Convert a file between formats: internal, trl, prm800k, math_shepherd, processbench, gsm8k."""

    input: str = ""
    """input file (JSONL, or a JSON array for processbench)"""
    source: str = "gsm8k"
    """input format"""
    output: str = ""
    """output JSONL path (written atomically)"""
    target: str = "internal"
    """output format"""
    neutral: str = "unknown"
    """PRM800K neutral (0) ratings become: unknown (null label), positive (1.0) or negative (0.0)"""


def run(cfg: ConvertConfig) -> None:
    from prmkit.errors import InputError
    from prmkit.formats import convert

    if not cfg.input or not cfg.output:
        raise InputError("both --input and --output are required", field="input")
    options = {"neutral": cfg.neutral} if "prm800k" in (cfg.source, cfg.target) else {}
    n = convert(cfg.input, cfg.source, cfg.output, cfg.target, **options)
    print(f"converted {n if n is not None else ''} records {cfg.source} -> {cfg.target}: {cfg.output}")
