"""Small public data files prmkit ships (each with its licence beside it)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent


def gsm8k_test_path() -> Path:
    """The vendored GSM8K test split (1,319 lines, MIT licence; see `prmkit/data/gsm8k/README.md`)."""
    return DATA_DIR / "gsm8k" / "test.jsonl"
