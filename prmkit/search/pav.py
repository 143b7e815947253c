"""PAV ranking for search: score a step by Q under the base policy plus alpha x progress under a
prover (Setlur et al. 2024, arXiv 2410.08146).

`PAVScorer(base, prover, alpha)` is itself a `RewardModel`, so every search strategy takes it in
place of a PRM: step k scores Q_base(s_<=k) + alpha (Q_prover(s_<=k) - Q_prover(s_<=k-1)), through
`label.rules.progress` and `label.rules.pav_effective_reward`. Q_prover of the empty prefix is
`q0` when given; otherwise the first step's progress is taken as 0 (no prover value of the bare
question is available from a step scorer).
"""

from __future__ import annotations

from typing import Sequence

from prmkit.label.rules import pav_effective_reward, progress
from prmkit.rewards.base import ScorerStats


class PAVScorer:
    def __init__(self, base, prover, alpha: float, q0: float | None = None, aggregation: str | None = None):
        self.base, self.prover, self.alpha, self.q0 = base, prover, float(alpha), q0
        self.aggregation = aggregation or base.aggregation
        self.stats = ScorerStats()

    @property
    def num_parameters(self) -> int:
        return int(self.base.num_parameters) + int(self.prover.num_parameters)

    def score(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        b0, p0 = self.base.stats.tokens_scored, self.prover.stats.tokens_scored
        bu, pu = self.base.stats.uncached_tokens, self.prover.stats.uncached_tokens
        q_base = self.base.score(prompts, steps)
        q_prov = self.prover.score(prompts, steps)
        self.stats.calls += 1
        self.stats.sequences += len(prompts)
        # FLOPs: both models' tokens, weighted into this scorer's single parameter count
        self.stats.tokens_scored += _combined_tokens(self.base, self.prover, self.base.stats.tokens_scored - b0,
                                                     self.prover.stats.tokens_scored - p0)
        self.stats.uncached_tokens += _combined_tokens(self.base, self.prover, self.base.stats.uncached_tokens - bu,
                                                       self.prover.stats.uncached_tokens - pu)
        out = []
        for qb, qp in zip(q_base, q_prov):
            if not qb:
                out.append([])
                continue
            first = qp[0] if self.q0 is None else self.q0
            out.append(pav_effective_reward(qb, progress([first] + list(qp)), self.alpha))
        return out


def _combined_tokens(base, prover, tb: int, tp: int) -> int:
    """Tokens t such that 2 x (P_base + P_prover) x t = 2 x (P_base t_b + P_prover t_p)."""
    pb, pp = int(base.num_parameters), int(prover.num_parameters)
    if pb + pp == 0:
        return tb + tp
    return round((pb * tb + pp * tp) / (pb + pp))
