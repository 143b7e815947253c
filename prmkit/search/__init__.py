"""PRM-guided test-time search: best-of-N, beam search (with lookahead), DVTS, early rejection and
MCTS behind one signature, `SEARCHES[name](problems, sampler, rm, params) -> SearchRun`, each run
with its compute record (`budget.py`). Each strategy registers itself where it is written, with
`@search_strategy(name)` (`registry.py`); importing its module here fills `SEARCHES`."""

from __future__ import annotations

from prmkit.search.base import CommonParams, MCTSParams, ProblemResult, SearchParams, SearchRun, Solution
from prmkit.search.best_of_n import best_of_n
from prmkit.search.beam import beam
from prmkit.search.dvts import dvts
from prmkit.search.early_reject import early_reject
from prmkit.search.mcts import mcts
from prmkit.search.registry import SEARCHES, search_strategy

__all__ = ["SEARCHES", "CommonParams", "MCTSParams", "ProblemResult", "SearchParams", "SearchRun", "Solution",
           "beam", "best_of_n", "dvts", "early_reject", "mcts", "search_strategy"]
