"""Training data with exact step labels on the gym: policy samples on train-split problems, labelled by the
gym's step checker (`label.verify`, a tool label: no rollouts, no humans). Each part is written whole
(`write_records` writes a temp file and renames it), so a rerun resumes from the parts on file.

    data = checked_traces(Path("runs/strong-verifier"))   # -> runs/strong-verifier/train.jsonl

The stronger gym verifier in bench/models/strong_verifier is trained on exactly this data
(bench/strong_verifier.py), and bench/mcts_verifiers.py trains the same recipe on another backbone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence
from prmkit.label.verify import label_verify
from prmkit.policy.base import SamplingParams
from prmkit.policy.sample import make_sampler, sample_traces
from prmkit.resolve import default_policy
from prmkit.schema import read_traces, write_records

STRONG_VERIFIER_SAMPLES = (  # (temperature, first train problem, problems, seed); 4 samples per problem
    (1.0, 0, 4000, 101),
    (0.5, 4000, 4000, 202),
)
"""the samples of the stronger gym verifier's training data: 32,000 traces"""


def checked_traces(work: Path, samples: Sequence[tuple[float, int, int, int]] = STRONG_VERIFIER_SAMPLES) -> Path:
    """Samples of the shipped gym policy (4 per problem, 160 new tokens at most) for each (temperature, first
    train problem, problems, seed) in `samples`, labelled by the gym checker, one file per setting in `work`,
    then all of them in `work`/train.jsonl (returned)."""
    import torch

    from prmkit.gym.task import make_split

    torch.set_num_threads(1)
    sampler = make_sampler(default_policy())
    parts = []
    for temp, first, n, seed in samples:
        path = Path(work) / f"traces-t{temp:g}-s{seed}.jsonl"
        if not path.exists():  # write_records writes a temp file and renames it: a file here is whole
            problems = make_split("train", first + n)[first:]
            traces = sample_traces(sampler, problems, SamplingParams(n=4, max_new_tokens=160, temperature=temp,
                                                                     seed=seed), desc=f"sample T={temp:g}")
            write_records(path, label_verify(traces, checker="gym"))
        parts.append(path)
    data = Path(work) / "train.jsonl"
    if not data.exists():
        write_records(data, [t for p in parts for t in read_traces(p)])
    return data
