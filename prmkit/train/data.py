"""Training data for reward models: read labelled traces (prmkit schema or TRL stepwise format) or
label the gym recipe's policy samples (`prmkit.gym.samples.gym_traces`) with Monte-Carlo hard labels
(`prmkit.label.mc`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from prmkit.errors import InputError
from prmkit.formats import trl
from prmkit.label.mc import label_mc
from prmkit.policy.sample import make_sampler
from prmkit.progress import progress
from prmkit.reading import load_saved_dataset
from prmkit.resolve import default_policy
from prmkit.schema import Trace, from_dataset, iter_jsonl, read_traces, write_records


def read_training_traces(path: str) -> list[Trace]:
    """Traces from a prmkit JSONL, a TRL stepwise JSONL (`prompt`/`completions`/`labels`), a saved
    `datasets` dir or a hub dataset id with either layout (split "train")."""
    p = Path(path)
    if p.is_file():
        first = next(iter_jsonl(p), (1, {}))[1]  # names the file and line of a bad or missing first record
        keys = set(first) if isinstance(first, dict) else set()
        if {"completions", "labels"} <= keys:
            return [trl.record_to_trace(rec, line=n) for n, rec in iter_jsonl(p)]
        return read_traces(p)
    return _dataset_traces(path)


def _dataset_traces(path: str) -> list[Trace]:
    import datasets

    ds = load_saved_dataset(path) if Path(path).is_dir() else datasets.load_dataset(path)
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise InputError(f"expected a 'train' split, got {sorted(ds)}", file=path)
        ds = ds["train"]
    cols = set(ds.column_names)
    if {"prompt", "completions", "labels"} <= cols:
        return [trl.record_to_trace(dict(r), line=i + 1) for i, r in enumerate(ds)]
    return from_dataset(ds, Trace)


def mc_hard_labels(traces: Sequence[Trace], k: int, seed: int, model: str = "") -> list[Trace]:
    """Math-Shepherd hard labels from `k` policy completions per step prefix (`prmkit.label.mc.label_mc`)."""
    return label_mc(list(traces), make_sampler(model or default_policy()), k=k, mode="hard", seed=seed)


def _label_chunk(args) -> str:
    path, traces, k, seed, start = args
    import torch

    torch.set_num_threads(1)
    write_records(path, label_mc(traces, make_sampler(default_policy()), k=k, mode="hard", seed=seed, start_index=start))
    return path


def mc_hard_labels_chunked(traces: Sequence[Trace], k: int, seed: int, work: Path, workers: int = 1,
                           chunk: int = 100) -> list[Trace]:
    """`label_mc` (gym policy, hard) over chunks cached in `work/mc_<start>.jsonl`, so an interrupted run
    resumes; trace j's rollouts are seeded by (seed, j) whatever the chunking or `workers`."""
    jobs = [(str(work / f"mc_{s:06d}.jsonl"), list(traces[s: s + chunk]), k, seed, s)
            for s in range(0, len(traces), chunk)]
    todo = [j for j in jobs if not Path(j[0]).exists()]
    bar = progress(total=len(jobs), initial=len(jobs) - len(todo), desc="mc-hard label chunks")
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            for _ in pool.imap_unordered(_label_chunk, todo):
                bar.update(1)
    else:
        for j in todo:
            _label_chunk(j)
            bar.update(1)
    bar.close()
    return [t for j in jobs for t in read_traces(j[0])]


def step_targets(trace: Trace, line: int | None = None, file: str | None = None) -> list[float | None]:
    """The trace's step labels (None = unknown, not trained on)."""
    if trace.labels is None:
        raise InputError("expected step labels for PRM training; this trace has none", file=file, line=line,
                         field="labels")
    return list(trace.labels.values)


def outcome_target(trace: Trace, line: int | None = None, file: str | None = None) -> float:
    if trace.outcome is None:
        raise InputError("expected a graded outcome (0 or 1) for outcome-only training", file=file, line=line,
                         field="outcome")
    return float(trace.outcome)
