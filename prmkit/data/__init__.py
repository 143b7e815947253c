"""Files prmkit ships: small public data files (each with its licence beside it) and where the gym's
shipped models lie (a path only, so layers below the gym can name them without importing it)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
SHIPPED_POLICY_DIR = Path(__file__).parent.parent / "gym" / "checkpoint"
"""the shipped gym policy (`prmkit gym train-policy`; `prmkit.gym.train_policy.SHIPPED_POLICY_DIR`)"""
SHIPPED_PRM_DIR = DATA_DIR.parent / "gym" / "prm_checkpoint"
"""the shipped gym PRM (`prmkit.rewards.default_gym_prm`)"""


def gsm8k_test_path() -> Path:
    """The vendored GSM8K test split (1,319 lines, MIT licence; see `prmkit/data/gsm8k/README.md`)."""
    return DATA_DIR / "gsm8k" / "test.jsonl"
