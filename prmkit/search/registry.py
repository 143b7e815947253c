"""The registry of search strategies: `SEARCHES[name](problems, sampler, rm, params) -> SearchRun`.

A strategy is one function with that signature, registered where it is written:

    @search_strategy("beam")
    def beam(problems, sampler, rm, params: SearchParams) -> SearchRun: ...

`params` is a `SearchParams`; a strategy reads the shared knobs (`CommonParams`) it needs and, if it
has knobs of its own, its own group (MCTS: `params.mcts`). `prmkit search --method NAME` and
`prmkit eval search --methods ...` look names up here.
"""

from __future__ import annotations

from typing import Callable

SEARCHES: dict[str, Callable] = {}
"""name -> fn(problems, sampler, rm, params) -> SearchRun (strings map to strategies here, once)"""


def search_strategy(name: str) -> Callable[[Callable], Callable]:
    """Register `fn(problems, sampler, rm, params) -> SearchRun` under `name`; a name is registered once."""
    def wrap(fn: Callable) -> Callable:
        if name in SEARCHES and SEARCHES[name] is not fn:
            raise ValueError(f"search strategy {name!r} is already registered ({SEARCHES[name].__module__})")
        SEARCHES[name] = fn
        return fn
    return wrap
