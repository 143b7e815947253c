"""Policy-gradient losses and KL estimators (pure torch functions).

Shapes: B batch, T tokens; `mask` (B,T) bool, True = real response token. Padded positions may hold
anything (even NaN/inf): they are selected away with `torch.where`, never multiplied by 0.
"""

from __future__ import annotations

import torch

from prmkit.errors import InputError


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` over positions where `mask` is True (all dims, or along `dim`); 0 where nothing is real."""
    kept = torch.where(mask, values, torch.zeros_like(values))  # like values
    if dim is None:
        return kept.sum() / mask.sum().clamp(min=1)  # ()
    return kept.sum(dim) / mask.sum(dim).clamp(min=1)  # values with `dim` removed


def ppo_clip_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                  mask: torch.Tensor, clip_eps: float = 0.2, clip_eps_high: float | None = None,
                  aggregate: str = "token_mean") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO clipped surrogate, L = -E_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps_high) A_t), rho = pi/pi_old.

    clip_eps_high (default = clip_eps) gives DAPO's asymmetric "clip-higher". `aggregate`:
    "token_mean" (mean over all real tokens of the batch, verl default) or "seq_mean_token_mean"
    (mean over tokens within a response, then over responses). Returns (loss, stats) with detached stats:
    clip_frac (fraction of real tokens where the clipped term is the active, smaller one),
    approx_kl (k3 estimate of KL(pi_old || pi) = E[(rho - 1) - log rho], samples from pi_old),
    approx_kl_k1 (E[-log rho]) and ratio_mean.
    At rho = 1 the loss is -mean(A) over real tokens.
    """
    # docs/methods.md (Schulman et al. 2017, PPO eq. 7; clip-higher: Yu et al. 2025, DAPO)
    if aggregate not in ("token_mean", "seq_mean_token_mean"):
        raise InputError(f"aggregate must be 'token_mean' or 'seq_mean_token_mean', got {aggregate!r}",
                         field="aggregate")
    eps_high = clip_eps if clip_eps_high is None else clip_eps_high
    log_ratio = torch.where(mask, logprobs - old_logprobs, torch.zeros_like(logprobs))  # (B,T)
    adv = torch.where(mask, advantages, torch.zeros_like(advantages))  # (B,T)
    ratio = torch.exp(log_ratio)  # (B,T)
    surrogate = ratio * adv  # (B,T)
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + eps_high) * adv  # (B,T)
    objective = torch.minimum(surrogate, clipped)  # (B,T)
    if aggregate == "token_mean":
        loss = -masked_mean(objective, mask)  # ()
    else:
        has_tokens = mask.any(-1)  # (B,)
        loss = -masked_mean(masked_mean(objective, mask, dim=-1), has_tokens)  # ()
    with torch.no_grad():
        stats = {
            "clip_frac": masked_mean((clipped < surrogate).to(ratio.dtype), mask),  # ()
            "approx_kl": masked_mean((ratio - 1.0) - log_ratio, mask),  # ()
            "approx_kl_k1": masked_mean(-log_ratio, mask),  # ()
            "ratio_mean": masked_mean(ratio, mask),  # ()
        }
    return loss, stats


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k1 = log pi(y_t) - log pi_ref(y_t): unbiased for KL(pi || pi_ref) on samples from pi, can be < 0."""
    # Schulman 2020, "Approximating KL Divergence" (k1)
    return logprobs - ref_logprobs  # like logprobs


def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k2 = 0.5 * (log pi - log pi_ref)^2: biased, low variance, >= 0."""
    # Schulman 2020, "Approximating KL Divergence" (k2)
    return 0.5 * (logprobs - ref_logprobs) ** 2  # like logprobs


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 = (r - 1) - log r with r = pi_ref/pi: unbiased for KL(pi || pi_ref), >= 0 (GRPO's KL term).

    No clamping here (verl's `low_var_kl` additionally clamps to [-10, 10]); reduce with `masked_mean`.
    """
    # Schulman 2020, "Approximating KL Divergence" (k3); used by GRPO (Shao et al. 2024, eq. 4)
    log_r = ref_logprobs - logprobs  # like logprobs
    return torch.exp(log_r) - log_r - 1.0  # like logprobs
