"""Ray actor pools for the commands with `--backend ray` (label, score, search): one place that checks the
backend options, starts Ray (or joins `--ray-address`), builds the actors and hands their results back in
input order, so a command's ray path writes what its local path writes.

Ray is imported only inside `map_ordered` (heavy, and optional: only for `--backend ray`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

BACKENDS = ("local", "ray")
# every actor process: quiet progress bars, one OpenMP thread per actor (each holds one CPU)
ACTOR_ENV = {"PRMKIT_QUIET": "1", "OMP_NUM_THREADS": "1"}


def check_backend(backend: str, workers: int) -> None:
    """An `InputError` naming the field for an unknown backend or fewer than one worker."""
    from prmkit.errors import InputError

    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; expected local or ray", field="backend")
    if workers < 1:
        raise InputError(f"expected workers >= 1, got {workers}", field="workers")


def check_servers(servers: Sequence[str], field: str, backend: str, first_is_remote: bool, first_field: str) -> None:
    """More server URLs for the actors to round-robin over: only with --backend ray, each an http(s) URL,
    and only beside a first source (`first_field`) that is a server too."""
    from prmkit.errors import InputError

    if not servers:
        return
    if backend != "ray":
        raise InputError(f"--{field.replace('_', '-')} spreads Ray actors over several servers; it needs "
                         "--backend ray", field=field)
    for url in servers:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"expected an http(s):// server URL, got {url!r}", field=field)
    if not first_is_remote:
        raise InputError(f"--{field.replace('_', '-')} adds servers beside --{first_field.replace('_', '-')}, "
                         f"which must name a server (http(s)://) too", field=field)


def round_robin(first: str, more: Sequence[str], actor: int) -> str:
    """The source actor number `actor` uses: `first`, then each of `more`, in turn."""
    pool = [first, *more]
    return pool[actor % len(pool)]


class ActorPool:
    """Actors of one class, each built once; `map` sends items to whichever is free and returns results in
    input order (the actors keep their state, e.g. a loaded model, from one `map` to the next)."""

    def __init__(self, actors):
        self.actors = actors

    def map(self, method: str, items: Sequence[Any], on_result: Callable[[Any, Any], None]) -> None:
        """`on_result(item, actor.<method>(item))` for every item, in input order."""
        from ray.util import ActorPool as RayPool

        items = list(items)
        if not items:
            return
        pool = RayPool(self.actors[: len(items)])
        for item, result in zip(items, pool.map(lambda a, it: getattr(a, method).remote(it), items)):
            on_result(item, result)


@contextmanager
def actor_pool(actor_cls: type, actor_args: Callable[[int], tuple], actors: int, *, workers: int,
               address: str = "", env: dict[str, str] | None = None) -> Iterator[ActorPool]:
    """`actors` Ray actors (one CPU each), actor i built as `actor_cls(*actor_args(i))`.

    Ray joins `address` when given, else starts here with `workers` CPUs and `ACTOR_ENV` (plus `env`) in
    every worker; a Ray session already running in this process is used as it is and left running."""
    import ray  # (heavy, and optional: only for --backend ray)

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {**ACTOR_ENV, **(env or {})}})
        started = True
    try:
        remote_cls = ray.remote(num_cpus=1)(actor_cls)
        yield ActorPool([remote_cls.remote(*actor_args(i)) for i in range(actors)])
    finally:
        if started:
            ray.shutdown()


def map_ordered(actor_cls: type, actor_args: Callable[[int], tuple], method: str, items: Sequence[Any],
                on_result: Callable[[Any, Any], None], *, workers: int, address: str = "",
                env: dict[str, str] | None = None) -> None:
    """One `ActorPool.map` on up to `workers` fresh actors (no more than there are items)."""
    with actor_pool(actor_cls, actor_args, min(workers, len(items)), workers=workers, address=address,
                    env=env) as pool:
        pool.map(method, items, on_result)
