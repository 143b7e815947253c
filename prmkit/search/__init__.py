"""PRM-guided test-time search: best-of-N, beam search (with lookahead), DVTS, early rejection and
MCTS behind one signature, `SEARCHES[name](problems, sampler, rm, params) -> SearchRun`, each run
with its compute record (`budget.py`)."""

from __future__ import annotations

from typing import Callable

from prmkit.search.base import ProblemResult, SearchParams, SearchRun, Solution
from prmkit.search.beam import beam
from prmkit.search.best_of_n import best_of_n
from prmkit.search.dvts import dvts
from prmkit.search.early_reject import early_reject
from prmkit.search.mcts import mcts

# name -> fn(problems, sampler, rm, params) -> SearchRun   (strings map to strategies here, once)
SEARCHES: dict[str, Callable] = {"best_of_n": best_of_n, "beam": beam, "dvts": dvts,
                                 "early_reject": early_reject, "mcts": mcts}

__all__ = ["SEARCHES", "ProblemResult", "SearchParams", "SearchRun", "Solution"]
