"""Turn-level credit for multi-turn agents: `compute_turn_advantages(name, TurnBatch(...))`.

Adding a method is one decorated function in `methods.py` (`@turn_method("name")`) plus its test.
"""

from prmkit.agents.credit import methods  # noqa: F401  (registers the methods)
from prmkit.agents.credit.methods import istar_prm_loss, oni_intrinsic, sil_advantages, spa_loss, spear_rewards
from prmkit.agents.credit.registry import (TURN_CREDIT, TurnBatch, compute_turn_advantages, group_normalize,
                                           last_turn, needs, turn_method, turn_returns)

__all__ = ["TURN_CREDIT", "TurnBatch", "compute_turn_advantages", "group_normalize", "istar_prm_loss",
           "last_turn", "needs", "oni_intrinsic", "sil_advantages", "spa_loss", "spear_rewards", "turn_method",
           "turn_returns"]
