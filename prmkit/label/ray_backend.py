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
    import ray  # (heavy, and optional: only for --backend ray)
    from ray.util import ActorPool

    started = False
    if not ray.is_initialized():
        if cfg.ray_address:
            ray.init(address=cfg.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=cfg.workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PRMKIT_QUIET": "1", "PRMKIT_LABEL_THREADS": "1",
                                               "OMP_NUM_THREADS": "1"}})
        started = True
    try:
        actor_cls = ray.remote(num_cpus=1)(_LabelActor)
        actors = [actor_cls.remote(cfg, problems, sc_map) for _ in range(min(cfg.workers, len(chunks)))]
        pool = ActorPool(actors)
        for lines in pool.map(lambda a, ch: a.label.remote(ch), list(chunks)):
            write(lines)
    finally:
        if started:
            ray.shutdown()
