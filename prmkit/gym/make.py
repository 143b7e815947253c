"""`prmkit gym make`: write a gym split's problems as JSONL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GymMakeConfig:
    """Generate gym problems (seeded) and write them as JSONL."""

    out: str = "runs/gym/problems.jsonl"
    """output JSONL path"""
    split: str = "test"
    """named split: train, test, long, dev, long_dev"""
    num_problems: int = 500
    """problems to generate"""
    min_ops: int = 0
    """override the split's fewest operations (0: keep)"""
    max_ops: int = 0
    """override the split's most operations (0: keep)"""
    operand_max: int = 0
    """override the operand range (0: keep)"""
    max_value: int = 0
    """override the bound on intermediate values (0: keep)"""
    ops: str = ""
    """override the operators, e.g. '+-*/' (empty: keep)"""
    seed: int = -1
    """override the split's seed (-1: keep)"""


def run(cfg: GymMakeConfig) -> None:
    from prmkit.gym.task import make_split
    from prmkit.schema import write_records

    overrides = {k: v for k, v in dict(min_ops=cfg.min_ops, max_ops=cfg.max_ops, operand_max=cfg.operand_max,
                                        max_value=cfg.max_value, ops=cfg.ops).items() if v}
    if cfg.seed >= 0:
        overrides["seed"] = cfg.seed
    problems = make_split(cfg.split, cfg.num_problems, **overrides)
    write_records(cfg.out, problems)
    print(f"wrote {len(problems)} {cfg.split} problems to {cfg.out}")
