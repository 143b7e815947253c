"""Ray execution of `prmkit label`: chunks of traces go to `--workers` actors, each holding its own
sampler (loaded from the model path); results come back in input order, so the output equals the
local backend's (per-trace seeding).  `--ray-address` joins a cluster; otherwise Ray starts here."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from prmkit.label.config import LabelConfig
from prmkit.label.worker import Worker
from prmkit.schema import Problem, Trace


class _LabelActor:
    def __init__(self, cfg: LabelConfig, problems, sc_map):
        os.environ.setdefault("PRMKIT_QUIET", "1")
        if not cfg.threads:
            cfg = dataclasses.replace(cfg, threads=1)
        self.worker = Worker(cfg, problems, sc_map)

    def label(self, items):
        return self.worker.label(items)


def run_ray(cfg: LabelConfig, problems: dict[str, Problem] | None, sc_map: dict[str, float] | None,
            chunks: Sequence[list[tuple[int, Trace]]], write: Callable[[list[str]], None]) -> None:
    from prmkit.ray_pool import map_ordered

    map_ordered(_LabelActor, lambda i: (cfg, problems, sc_map), "label", chunks, lambda chunk, lines: write(lines),
                workers=cfg.workers, address=cfg.ray_address, env={"PRMKIT_LABEL_THREADS": "1"})
