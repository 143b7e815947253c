"""Ray execution of `prmkit search`: chunks of problems go to `--workers` actors, each holding its own policy
sampler and reward model (with `--policy-servers` / `--prm-servers`, actor i uses the i-th server in turn).

Every expansion is seeded from (seed, problem id, position in the search) (`search.base`), so a problem's
candidates do not depend on which problems share its batch: the records come back in problem order and
equal the local backend's, and the compute record is the parts' sum (`budget.sum_compute`; the call
counts are the calls every actor made, more than one process makes for the same work). With a neural
PRM, scores are computed in other padded batches than locally and may differ in float32 rounding."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from types import SimpleNamespace

from prmkit.progress import progress
from prmkit.ray_pool import actor_pool, round_robin
from prmkit.schema import Problem
from prmkit.search.base import SearchParams, SearchRun
from prmkit.search.budget import sum_compute


class _SearchActor:
    def __init__(self, cfg, params: SearchParams, model: str, spec, prover, load: Callable):
        """`load(cfg, model, spec, prover)` -> (sampler, reward model): `prmkit.search.run.load_models`,
        passed in by the run that calls this module."""
        os.environ.setdefault("PRMKIT_QUIET", "1")
        self.cfg, self.params = dataclasses.replace(cfg, threads=cfg.threads or 1), params
        self.sampler, self.rm = load(self.cfg, model, spec, prover)

    def prompt_format(self, _=None):
        return getattr(self.sampler, "prompt_format", None)

    def search(self, problems: list[Problem]) -> SearchRun:
        from prmkit.search import SEARCHES

        return SEARCHES[self.cfg.method](problems, self.sampler, self.rm, self.params)


def problem_chunks(problems: list[Problem], chunk: int, workers: int) -> list[list[Problem]]:
    """Consecutive chunks of `chunk` problems (0: the problems split evenly over `workers`)."""
    size = chunk or -(-len(problems) // workers)
    return [problems[i: i + size] for i in range(0, len(problems), size)]


def search_ray(cfg, params: SearchParams, problems: list[Problem], model: str, specs: list, prover,
               load: Callable):
    """(the whole run as one `SearchRun`, a stand-in for the sampler carrying its prompt format); each actor
    loads its models with `load(cfg, model, spec, prover)`."""
    t0 = time.perf_counter()
    chunks = problem_chunks(list(problems), cfg.chunk, cfg.workers)

    def actor_args(i: int):
        own = dataclasses.replace(cfg, base_url=round_robin(cfg.base_url, cfg.policy_servers, i))
        return own, params, model, specs[i % len(specs)], prover, load

    runs: list[SearchRun] = []
    formats: list = []
    bar = progress(total=len(problems), desc=f"search {cfg.method} (ray)")
    with actor_pool(_SearchActor, actor_args, min(cfg.workers, len(chunks)), workers=cfg.workers,
                    address=cfg.ray_address) as pool:
        pool.map("prompt_format", [None], lambda _, fmt: formats.append(fmt))

        def done(chunk, run):
            runs.append(run)
            bar.update(len(chunk))

        pool.map("search", chunks, done)
    bar.close()
    merged = SearchRun(method=cfg.method, params=params, results=[r for run in runs for r in run.results],
                       compute=sum_compute([run.compute for run in runs], time.perf_counter() - t0))
    return merged, SimpleNamespace(prompt_format=formats[0])
