"""PRIME's online implicit PRM (METHODS.md §2): token rewards beta * log(pi_phi / pi_ref), updated each
RL step with the implicit-PRM cross-entropy on the outcome labels of the same rollouts.

pi_phi starts as a copy of the policy's starting weights; pi_ref is frozen (the same frozen
reference the policy's KL term uses). Works with any HF causal LM.
"""

from __future__ import annotations

import copy
import warnings

import torch

from prmkit.rl.rollout import RolloutBatch, response_logprobs


def accuracy_filter(outcomes: torch.Tensor, groups: torch.Tensor, lower: float = 0.2,
                    upper: float = 0.8) -> torch.Tensor:
    """Rows whose prompt's accuracy (mean outcome of its group) lies in [lower, upper] -> (B,) bool.

    Inclusive bounds as PRIME's code (with K=4 and 0.2/0.8 it keeps accuracies 0.25, 0.5, 0.75).
    """
    # METHODS.md §2.2 step 3 (Cui et al. 2025, PRIME accuracy filter; code uses inclusive bounds)
    _, index = torch.unique(groups, return_inverse=True)  # (B,)
    n = int(index.max()) + 1 if len(index) else 0
    total = torch.zeros(n, dtype=torch.float64).index_add_(0, index, outcomes.double())  # (G,)
    count = torch.zeros(n, dtype=torch.float64).index_add_(0, index, torch.ones_like(outcomes, dtype=torch.float64))
    acc = (total / count)[index]  # (B,)
    eps = 1e-9
    return (acc >= lower - eps) & (acc <= upper + eps)  # (B,)


class ImplicitPRM:
    """Online implicit PRM: `token_rewards(batch)` -> (B,T) beta*log-ratio; `update(batch, rows)` one CE pass."""

    def __init__(self, init_model, ref_model, beta: float = 0.05, lr: float = 1e-6, grad_clip: float = 1.0,
                 minibatch: int = 64):
        self.model = copy.deepcopy(init_model)
        self.model.train()
        self.ref = ref_model
        self.beta, self.grad_clip, self.minibatch = beta, grad_clip, minibatch
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    def token_rewards(self, batch: RolloutBatch) -> torch.Tensor:
        """beta * (log pi_phi - log pi_ref) per response token, 0 on padding -> (B,T)."""
        from prmkit.train.losses import implicit_prm_rewards

        if batch.ref_logprobs is None:
            raise ValueError("batch.ref_logprobs must be computed before the implicit PRM reads rewards")
        with torch.no_grad():
            lp = response_logprobs(self.model, batch)  # (B,T)
        return implicit_prm_rewards(lp, batch.ref_logprobs, batch.response_mask, self.beta)  # (B,T)

    def update(self, batch: RolloutBatch, rows: torch.Tensor) -> dict[str, float]:
        """One CE pass over `rows` ((R,) long) against their outcomes; returns loss and accuracy of
        the implicit outcome reward's sign before the update (PRIME's `dpo_acc`)."""
        from prmkit.train.losses import implicit_ce_loss

        if len(rows) == 0:  # nothing to learn from: skip the update, say so, log no NaN
            warnings.warn(f"implicit PRM update skipped: the accuracy filter kept 0 of {batch.batch_size} rows "
                          "(every prompt's accuracy lies outside [acc_lower, acc_upper])")
            return {"prm/loss": None, "prm/acc": None, "prm/rows": 0, "prm/skipped": True}
        losses, correct = [], 0.0
        for start in range(0, len(rows), self.minibatch):
            mb = rows[start:start + self.minibatch]  # (M,)
            lp = response_logprobs(self.model, batch, mb)  # (M,T)
            ref, mask, labels = batch.ref_logprobs[mb], batch.response_mask[mb], batch.outcomes[mb]
            loss = implicit_ce_loss(lp, ref, mask, labels, self.beta) * (len(mb) / len(rows))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            with torch.no_grad():
                r = self.beta * torch.where(mask, lp - ref, torch.zeros_like(lp)).sum(-1)  # (M,)
                correct += float(((r > 0).float() == (labels > 0.5).float()).float().sum())
            losses.append(float(loss.detach()) * len(rows) / len(mb))
        return {"prm/loss": sum(losses) / len(losses), "prm/acc": correct / len(rows), "prm/rows": int(len(rows))}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
