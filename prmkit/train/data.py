"""Training data for reward models: read labelled traces (prmkit schema or TRL stepwise format) or
build the gym recipe (policy samples + Monte-Carlo hard labels from `prmkit.label.mc`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from prmkit.errors import InputError
from prmkit.schema import Trace


def read_training_traces(path: str) -> list[Trace]:
    """Traces from a prmkit JSONL, a TRL stepwise JSONL (`prompt`/`completions`/`labels`), a saved
    `datasets` dir or a hub dataset id with either layout (split "train")."""
    p = Path(path)
    if p.is_file():
        with open(p) as f:
            first = next((line for line in f if line.strip()), "")
        try:
            keys = set(json.loads(first)) if first else set()
        except json.JSONDecodeError as e:
            raise InputError(f"expected JSON lines: {e.msg}", file=str(p), line=1) from None
        if {"completions", "labels"} <= keys:
            from prmkit.formats import trl
            from prmkit.schema import iter_jsonl

            return [trl.record_to_trace(rec, line=n) for n, rec in iter_jsonl(p)]
        from prmkit.schema import read_traces

        return read_traces(p)
    return _dataset_traces(path)


def _dataset_traces(path: str) -> list[Trace]:
    import datasets

    from prmkit.formats import trl

    ds = datasets.load_from_disk(path) if Path(path).is_dir() else datasets.load_dataset(path)
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise InputError(f"expected a 'train' split, got {sorted(ds)}", file=path)
        ds = ds["train"]
    cols = set(ds.column_names)
    if {"prompt", "completions", "labels"} <= cols:
        return [trl.record_to_trace(dict(r), line=i + 1) for i, r in enumerate(ds)]
    from prmkit.schema import Trace as T, from_dataset

    return from_dataset(ds, T)


def gym_traces(split: str, num_problems: int, samples: int, seed: int, model: str = "",
               max_new_tokens: int = 160, desc: str = "sample") -> list[Trace]:
    """`samples` graded traces per gym problem from the policy (temperature 1), with gold first errors."""
    from prmkit.gym.task import make_split
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.sample import make_sampler, sample_traces

    sampler = make_sampler(model)
    params = SamplingParams(n=samples, max_new_tokens=max_new_tokens, temperature=1.0, seed=seed)
    return sample_traces(sampler, make_split(split, num_problems), params, desc=desc)


def mc_hard_labels(traces: Sequence[Trace], k: int, seed: int, model: str = "") -> list[Trace]:
    """Math-Shepherd hard labels from `k` policy completions per step prefix (`prmkit.label.mc.label_mc`)."""
    from prmkit.label.mc import label_mc
    from prmkit.policy.sample import make_sampler

    return label_mc(list(traces), make_sampler(model), k=k, mode="hard", seed=seed)


def step_targets(trace: Trace, line: int | None = None) -> list[float | None]:
    """The trace's step labels (None = unknown, not trained on)."""
    if trace.labels is None:
        raise InputError("expected step labels for PRM training; this trace has none", line=line, field="labels")
    return list(trace.labels.values)


def outcome_target(trace: Trace, line: int | None = None) -> float:
    if trace.outcome is None:
        raise InputError("expected a graded outcome (0 or 1) for outcome-only training", line=line, field="outcome")
    return float(trace.outcome)
