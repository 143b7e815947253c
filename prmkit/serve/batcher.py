"""Fair request batching for `prmkit serve`: concurrent score requests share model calls, and one
huge request cannot starve small ones.

Each request is a job; the worker builds every model call (at most `max_batch` items) by taking
up to `chunk_items` items from each waiting job in turn (one round robin pass), so a request that
arrives while a 3,000-item job is being scored is in the very next model call, which holds only
one `chunk_items` piece of the big job: it waits at most for the call in flight and a small call
of its own. A lone job fills whole calls of `max_batch`. A trace's scores do not depend on its batch
neighbours (an invariant of every prmkit reward model), so batching changes speed only.

All model and tokenizer work runs on one worker thread (`run`), so the model, its tokenizer and
its counters are never used by two threads at once, and the event loop keeps accepting requests.
`queued_steps` counts the steps of every unfinished job: the server refuses new work with 429
past its admission limit.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(eq=False)
class _Job:
    prompts: list
    steps: list
    future: Any
    cost: int
    rows: list = field(default_factory=list)
    next: int = 0  # first item not yet handed to a model call
    done: int = 0  # items scored


class Batcher:
    """Round-robin batcher over one reward model (see the module docstring).

    The queue and its worker belong to the event loop that first uses them (test clients may run a
    fresh loop per request, so they are rebuilt when the loop changes)."""

    def __init__(self, rm, max_batch: int = 64, wait_s: float = 0.005, chunk_items: int = 0):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.rm, self.max_batch, self.wait_s = rm, max_batch, wait_s
        self.chunk_items = chunk_items or max(1, max_batch // 4)
        self.requests = self.batches = self.model_calls = 0
        self.queued_steps = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prmkit-score")
        self._loop = None
        self._jobs: deque = deque()
        self._wake: Optional[asyncio.Event] = None
        self._worker: Optional[asyncio.Task] = None

    async def run(self, fn, *args):
        """Run `fn(*args)` on the model's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def score(self, prompts: list, steps: list) -> list:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop, self._jobs, self._wake = loop, deque(), asyncio.Event()
            self._worker = loop.create_task(self._run())
        job = _Job(prompts, steps, loop.create_future(), sum(len(s) for s in steps), [[] for _ in prompts])
        self.requests += 1
        self.queued_steps += job.cost
        try:
            if prompts:
                self._jobs.append(job)
                self._wake.set()
            else:
                job.future.set_result([])
            return await job.future
        finally:
            self.queued_steps -= job.cost

    def _take(self) -> list:
        """(job, start, end) pieces for one model call: one round of up to `chunk_items` items from each
        waiting job in turn (so a call beside a huge job stays small), or a lone job's next `max_batch`."""
        pieces, items = [], 0
        self._jobs = deque(j for j in self._jobs if not j.future.done())  # failed, or its client gave up
        rounds = len(self._jobs) if len(self._jobs) > 1 else math.inf
        while self._jobs and items < self.max_batch and len(pieces) < rounds:
            job = self._jobs.popleft()
            n = min(self.chunk_items, self.max_batch - items, len(job.prompts) - job.next)
            pieces.append((job, job.next, job.next + n))
            job.next += n
            items += n
            if job.next < len(job.prompts):
                self._jobs.append(job)
        return pieces

    async def _run(self) -> None:
        while True:
            while not self._jobs:
                self._wake.clear()
                await self._wake.wait()
            if sum(len(j.prompts) - j.next for j in self._jobs) < self.max_batch:
                await asyncio.sleep(self.wait_s)  # let concurrent requests join this call
            pieces = self._take()
            if not pieces:
                continue
            self.batches += 1
            prompts = [p for job, a, b in pieces for p in job.prompts[a:b]]
            steps = [s for job, a, b in pieces for s in job.steps[a:b]]
            try:
                rows = await self.run(self._score_all, prompts, steps)
            except Exception as batch_error:  # noqa: BLE001 - one bad request must not fail its neighbours
                await self._retry_alone(pieces, batch_error)
                continue
            start = 0
            for job, a, b in pieces:
                self._fill(job, a, rows[start:start + b - a])
                start += b - a

    async def _retry_alone(self, pieces: list, batch_error: Exception) -> None:
        for job, a, b in pieces:
            if job.future.done():
                continue
            try:
                if len(pieces) == 1:
                    raise batch_error
                rows = await self.run(self._score_all, job.prompts[a:b], job.steps[a:b])
            except Exception as e:  # noqa: BLE001 - handed to this request only
                job.future.set_exception(e)
            else:
                self._fill(job, a, rows)

    @staticmethod
    def _fill(job: _Job, start: int, rows: list) -> None:
        if job.future.done():
            return
        job.rows[start:start + len(rows)] = rows
        job.done += len(rows)
        if job.done == len(job.prompts):
            job.future.set_result(job.rows)

    def _score_all(self, prompts: list, steps: list) -> list:
        # items with no steps have no scores; the rest go to the model in one call
        keep = [i for i, s in enumerate(steps) if len(s) > 0]
        out: list = [[] for _ in prompts]
        if not keep:
            return out
        self.model_calls += 1
        rows = self.rm.score([prompts[i] for i in keep], [steps[i] for i in keep])
        if len(rows) != len(keep):
            raise RuntimeError(f"reward model returned {len(rows)} rows for {len(keep)} items")
        for i, row in zip(keep, rows):
            out[i] = [float(v) for v in row]
        return out
