"""PRIME's online implicit PRM (Cui et al., arXiv 2502.01456): token rewards beta * log(pi_phi / pi_ref),
updated each RL step with the implicit-PRM cross-entropy on the outcome labels of the same rollouts.

pi_phi starts as a copy of the policy's starting weights; pi_ref is frozen (the same frozen
reference the policy's KL term uses). Works with any HF causal LM.

Reference-implementation details (PRIME-RL/PRIME `training/`, verl `recipe/prime`), each an option:
`batch_norm` reward normalisation, `token`/`whole` granularity, AdamW (lr 1e-6, weight decay 0,
grad clip 10), one CE pass per step over minibatches of the policy's minibatch size (mean loss per
minibatch), and the pairwise ranking accuracy `rank_accuracy` (the reference's `dpo_acc`).
"""

from __future__ import annotations

import copy
import warnings

import torch

from prmkit.errors import InputError
from prmkit.rl.filtering import accuracy_filter  # noqa: F401  (re-exported: the filter serves every method)
from prmkit.rl.rollout import RolloutBatch, response_logprobs

NORMS = ("batch_norm", "none")
GRANULARITIES = ("token", "whole")
OPTIMIZERS = ("adamw", "adam")
LOSS_SCALES = ("minibatch", "rows")
LOO_FORMS = ("reference", "paper")

# the options that reproduce PRIME as benchmarked in bench/results/rl.json (before the reference-faithful defaults)
AS_BENCHMARKED_V1 = dict(prime_norm="none", prime_loo="paper", prime_granularity="token", prime_optimizer="adam",
                         prime_lr=1e-4, prime_weight_decay=0.0, prime_grad_clip=1.0, prime_passes=1,
                         prime_loss_scale="rows", prime_whiten=False, acc_filter_mode="drop")


def batch_norm_scale(token_rewards: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> float:
    """The reference's `prime_norm: batch_norm` divisor: the batch's largest absolute reverse cumulative
    sum, max_{b,t} |sum_{s>=t} r_{b,s}| + eps. token_rewards, mask (B,T) -> float."""
    r = torch.where(mask, token_rewards, torch.zeros_like(token_rewards))  # (B,T)
    if r.numel() == 0:
        return 1.0
    return float(r.flip(-1).cumsum(-1).flip(-1).abs().max()) + eps


def batch_norm_rewards(token_rewards: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Token rewards divided by `batch_norm_scale` (the reference's `prime_norm: batch_norm`), 0 on padding."""
    r = torch.where(mask, token_rewards, torch.zeros_like(token_rewards))  # (B,T)
    return r / batch_norm_scale(r, mask, eps)  # (B,T)


def apply_granularity(token_rewards: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """`token`: every token keeps its reward; `whole`: the response's summed reward on its last real token."""
    r = torch.where(mask, token_rewards, torch.zeros_like(token_rewards))  # (B,T)
    if mode == "token":
        return r
    if mode != "whole":
        raise InputError(f"prime granularity must be one of {GRANULARITIES}, got {mode!r}", field="prime_granularity")
    last = (mask.sum(-1) - 1).clamp(min=0)  # (B,)
    return torch.zeros_like(r).scatter_(1, last[:, None], r.sum(-1, keepdim=True))  # (B,T)


def rank_accuracy(scores: torch.Tensor, outcomes: torch.Tensor, groups: torch.Tensor) -> float:
    """The reference's pairwise ranking accuracy (`compute_dpo_accuracy`), averaged over groups.

    In each group, over pairs i < j: a pair counts as right when (s_i - s_j > 0) == (a_i - a_j > 0),
    weighted by |a_i - a_j|; a group without a pair of different outcomes scores 0.5. As in the
    reference, a tied score counts as "i not above j". scores, outcomes, groups (B,) -> float.
    """
    per_group = []
    for g in torch.unique(groups):
        idx = torch.nonzero(groups == g).flatten()
        s, a = scores[idx].double(), outcomes[idx].double()
        upper = torch.triu(torch.ones(len(idx), len(idx), dtype=torch.bool), diagonal=1)
        ds, da = (s[:, None] - s[None, :])[upper], (a[:, None] - a[None, :])[upper]
        if float(da.abs().sum()) == 0.0:
            per_group.append(0.5)
        else:
            per_group.append(float((((ds > 0) == (da > 0)).double() * da.abs()).sum() / da.abs().sum()))
    return sum(per_group) / len(per_group) if per_group else float("nan")


def _pearson(x: torch.Tensor, y: torch.Tensor) -> float | None:
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    denom = float((x.pow(2).sum() * y.pow(2).sum()).sqrt())
    return float((x * y).sum()) / denom if denom > 0 else None


def process_term_stats(batch: RolloutBatch, outcomes: torch.Tensor, process_coef: float, outcome_coef: float,
                       loo: str) -> dict:
    """Size of PRIME's process term and its correlation with the outcome advantage, over the real tokens of
    the rows that enter the loss, before any whitening: prime/process_abs, prime/outcome_abs, prime/process_outcome_corr."""
    from prmkit.rl import advantages as A

    rows = batch.loss_rows if batch.loss_rows is not None else torch.ones(batch.batch_size, dtype=torch.bool)
    if not bool(rows.any()) or batch.token_rewards is None:
        return {}
    mask = batch.response_mask[rows]
    proc = A.prime_advantages(outcomes[rows], batch.token_rewards[rows], mask, batch.groups[rows],
                              process_coef=process_coef, outcome_coef=0.0, process_loo=loo)[mask]  # (N,)
    out = (A.rloo_advantages(outcomes[rows].float(), batch.groups[rows])[:, None] * outcome_coef).expand_as(mask)[mask]
    return {"prime/process_abs": float(proc.abs().mean()), "prime/outcome_abs": float(out.abs().mean()),
            "prime/process_outcome_corr": _pearson(proc, out)}


def check_prime_options(cfg) -> None:
    """InputError for a bad PRIME option, before any model loads."""
    for name, allowed in (("prime_norm", NORMS), ("prime_granularity", GRANULARITIES),
                          ("prime_optimizer", OPTIMIZERS), ("prime_loss_scale", LOSS_SCALES), ("prime_loo", LOO_FORMS)):
        if getattr(cfg, name) not in allowed:
            raise InputError(f"--{name.replace('_', '-')} must be one of {allowed}, got {getattr(cfg, name)!r}",
                             field=name)
    if cfg.prime_passes < 1 or cfg.prime_lr <= 0 or cfg.prime_beta <= 0:
        raise InputError(f"expected --prime-passes >= 1, --prime-lr > 0 and --prime-beta > 0, got "
                         f"{cfg.prime_passes}, {cfg.prime_lr}, {cfg.prime_beta}", field="prime_passes")


class ImplicitPRM:
    """Online implicit PRM: `token_rewards(batch, rows)` -> (B,T) rewards; `update(batch, rows)` the CE passes."""

    def __init__(self, init_model, ref_model, beta: float = 0.05, lr: float = 1e-6, grad_clip: float = 10.0,
                 minibatch: int = 64, optimizer: str = "adamw", weight_decay: float = 0.0, passes: int = 1,
                 granularity: str = "token", norm: str = "batch_norm", loss_scale: str = "minibatch"):
        self.model = copy.deepcopy(init_model)
        self.model.train()
        self.ref = ref_model
        self.beta, self.grad_clip, self.minibatch = beta, grad_clip, minibatch
        self.passes, self.granularity, self.norm, self.loss_scale = passes, granularity, norm, loss_scale
        if optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        else:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)

    def token_rewards(self, batch: RolloutBatch, rows: torch.Tensor | None = None) -> torch.Tensor:
        """beta * (log pi_phi - log pi_ref) per response token, placed by granularity and normalised
        (batch_norm over `rows`, the rows that enter the loss; default all), 0 on padding -> (B,T)."""
        from prmkit.rewards.implicit_math import implicit_prm_rewards

        if batch.ref_logprobs is None:
            raise ValueError("batch.ref_logprobs must be computed before the implicit PRM reads rewards")
        with torch.no_grad():
            lp = response_logprobs(self.model, batch)  # (B,T)
        r = implicit_prm_rewards(lp, batch.ref_logprobs, batch.response_mask, self.beta)  # (B,T)
        r = apply_granularity(r, batch.response_mask, self.granularity)  # (B,T)
        if self.norm == "batch_norm":
            sel = torch.ones(batch.batch_size, dtype=torch.bool) if rows is None else rows
            if bool(sel.any()):
                r = r / batch_norm_scale(r[sel], batch.response_mask[sel])  # (B,T)
        return r  # (B,T)

    def sequence_scores(self, batch: RolloutBatch, rows: torch.Tensor) -> torch.Tensor:
        """Summed log-ratio sum_t (log pi_phi - log pi_ref) of `rows` with the current weights -> (R,)."""
        with torch.no_grad():
            lp = response_logprobs(self.model, batch, rows)  # (R,T)
        mask = batch.response_mask[rows]
        return torch.where(mask, lp - batch.ref_logprobs[rows], torch.zeros_like(lp)).sum(-1)  # (R,)

    def update(self, batch: RolloutBatch, rows: torch.Tensor) -> dict[str, float]:
        """`passes` CE passes over `rows` ((R,) long) against their outcomes; returns the loss, the sign
        accuracy of the implicit outcome reward during the first pass (PRIME's `dpo_acc_abs`) and the
        pairwise ranking accuracy on these rows before the update (`prm/rank_acc_before`)."""
        from prmkit.train.losses import implicit_ce_loss

        if len(rows) == 0:  # nothing to learn from: skip the update, say so, log no NaN
            warnings.warn(f"implicit PRM update skipped: the accuracy filter kept 0 of {batch.batch_size} rows "
                          "(every prompt's accuracy lies outside [acc_lower, acc_upper])")
            return {"prm/loss": None, "prm/acc": None, "prm/rows": 0, "prm/skipped": True,
                    "prm/rank_acc_before": None}
        before = rank_accuracy(self.sequence_scores(batch, rows), batch.outcomes[rows], batch.groups[rows])
        losses, correct = [], 0.0
        for p in range(self.passes):
            for start in range(0, len(rows), self.minibatch):
                mb = rows[start:start + self.minibatch]  # (M,)
                lp = response_logprobs(self.model, batch, mb)  # (M,T)
                ref, mask, labels = batch.ref_logprobs[mb], batch.response_mask[mb], batch.outcomes[mb]
                loss = implicit_ce_loss(lp, ref, mask, labels, self.beta)
                if self.loss_scale == "rows":  # prmkit's first PRIME: minibatch loss scaled by its share of the rows
                    loss = loss * (len(mb) / len(rows))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                self.optimizer.step()
                if p == 0:
                    with torch.no_grad():
                        r = self.beta * torch.where(mask, lp - ref, torch.zeros_like(lp)).sum(-1)  # (M,)
                        correct += float(((r > 0).float() == (labels > 0.5).float()).float().sum())
                    scale = len(rows) / len(mb) if self.loss_scale == "rows" else 1.0
                    losses.append(float(loss.detach()) * scale)
        return {"prm/loss": sum(losses) / len(losses), "prm/acc": correct / len(rows), "prm/rows": int(len(rows)),
                "prm/rank_acc_before": before}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
