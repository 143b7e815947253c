"""Advantages and returns for RL with outcome and process rewards (pure torch functions).

Shapes: B batch (responses), T tokens, S steps, G group size (responses per prompt).
`groups` arguments accept either an int G (rows 0..G-1 are one prompt, G..2G-1 the next, ...) or a
(B,) integer tensor of group ids (any values, any order). Every `*_mask` is bool, True = real position;
outputs are 0 at padded positions and padded positions never change a result.
"""

from __future__ import annotations

import torch

from prmkit.errors import InputError


# --------------------------------------------------------------------------------------------------
# group plumbing
# --------------------------------------------------------------------------------------------------

def group_index(groups: int | torch.Tensor, batch_size: int, device=None) -> tuple[torch.Tensor, int]:
    """Dense group index (B,) in 0..num_groups-1 and num_groups, from a group size G or group ids (B,)."""
    if isinstance(groups, int):
        if groups < 1 or batch_size % groups != 0:
            raise InputError(f"batch of {batch_size} rows cannot be split into groups of {groups}",
                             field="groups")
        index = torch.arange(batch_size, device=device) // groups  # (B,)
        return index, batch_size // groups
    ids = torch.as_tensor(groups, device=device)  # (B,)
    if ids.shape != (batch_size,):
        raise InputError(f"group ids must have shape ({batch_size},), got {tuple(ids.shape)}", field="groups")
    _, index = torch.unique(ids, return_inverse=True)  # (B,)
    return index, int(index.max().item()) + 1 if batch_size else 0  # (B,), int


def _group_sum(values: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Sum of (B,) values per group -> (num_groups,)."""
    zeros = torch.zeros(num_groups, dtype=values.dtype, device=values.device)  # (num_groups,)
    return zeros.index_add_(0, index, values)  # (num_groups,)


def _leave_one_out_mean(values: torch.Tensor, groups: int | torch.Tensor) -> torch.Tensor:
    """(1/(n_g-1)) * sum_{j != i, same group} values_j for every row i -> (B,); needs n_g >= 2."""
    index, num_groups = group_index(groups, values.shape[0], values.device)  # (B,)
    count = _group_sum(torch.ones_like(values), index, num_groups)  # (num_groups,)
    if bool((count < 2).any()):
        raise InputError("leave-one-out baselines need at least 2 responses in every group", field="groups")
    total = _group_sum(values, index, num_groups)  # (num_groups,)
    return (total[index] - values) / (count[index] - 1)  # (B,)


def zero_variance_group_share(rewards: torch.Tensor, groups: int | torch.Tensor) -> float:
    """Share of groups whose rewards are all equal (B,) -> float in [0, 1]; 0.0 for an empty batch.

    Such a group gives a group-relative baseline (GRPO, RLOO) no signal: every advantage in it is 0.
    DAPO (arXiv 2503.14476) resamples them away ("dynamic sampling"); here they are only counted.
    """
    if rewards.shape[0] == 0:
        return 0.0
    index, num_groups = group_index(groups, rewards.shape[0], rewards.device)  # (B,)
    r = rewards.double()
    lo = torch.full((num_groups,), float("inf"), dtype=r.dtype).scatter_reduce(0, index, r, "amin")  # (G,)
    hi = torch.full((num_groups,), float("-inf"), dtype=r.dtype).scatter_reduce(0, index, r, "amax")  # (G,)
    return float((lo == hi).double().mean())


def no_update_reason(advantages: torch.Tensor, response_mask: torch.Tensor, rows: torch.Tensor,
                     zero_var_share: float) -> str | None:
    """Why a policy step updates nothing, or None when some kept response token has a non-zero advantage.

    advantages, response_mask (B,T); rows (R,) the rows that enter the loss."""
    if len(rows) == 0:
        return "no rows entered the loss (the filter kept none)"
    if bool((advantages[rows].abs() * response_mask[rows]).gt(0).any()):
        return None
    return f"every advantage is zero ({zero_var_share:.0%} of groups have zero reward variance)"


# --------------------------------------------------------------------------------------------------
# docs/methods.md group baselines
# --------------------------------------------------------------------------------------------------

def grpo_advantages(rewards: torch.Tensor, groups: int | torch.Tensor, eps: float = 1e-6,
                    normalize_std: bool = True, unbiased: bool = True) -> torch.Tensor:
    """GRPO: A_i = (R_i - mean_g R) / (std_g R + eps); with normalize_std=False only the mean is removed.

    std is the unbiased (n-1) sample std, as `torch.std` in TRL/verl; a group of one row gets A = 0.

    >>> grpo_advantages(torch.tensor([1., 0., 0., 0.]), 4, eps=0.0)
    tensor([ 1.5000, -0.5000, -0.5000, -0.5000])
    """
    # docs/methods.md (Shao et al. 2024, DeepSeekMath eq. for outcome supervision)
    index, num_groups = group_index(groups, rewards.shape[0], rewards.device)  # (B,)
    count = _group_sum(torch.ones_like(rewards), index, num_groups)  # (num_groups,)
    mean = _group_sum(rewards, index, num_groups) / count  # (num_groups,)
    centered = rewards - mean[index]  # (B,)
    if not normalize_std:
        return centered  # (B,)
    denom = (count - 1).clamp(min=1) if unbiased else count  # (num_groups,)
    std = (_group_sum(centered ** 2, index, num_groups) / denom).sqrt()  # (num_groups,)
    return centered / (std[index] + eps)  # (B,)


def rloo_advantages(rewards: torch.Tensor, groups: int | torch.Tensor) -> torch.Tensor:
    """RLOO: A_i = R_i - (1/(G-1)) * sum_{j != i} R_j (leave-one-out mean of the same prompt's samples).

    >>> rloo_advantages(torch.tensor([1., 0., 0., 0.]), 4)
    tensor([ 1.0000, -0.3333, -0.3333, -0.3333])
    """
    # docs/methods.md (Ahmadian et al. 2024, "Back to Basics", RLOO baseline)
    return rewards - _leave_one_out_mean(rewards, groups)  # (B,)


def token_returns(token_rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Discounted reward-to-go G_t = sum_{s >= t, mask_s} gamma^(s - t) r_s, 0 at masked positions.

    The discount exponent is the token distance s - t (positions, not counting only real tokens), which
    matches the reverse scans in PRIME/PURE/verl for right-padded responses.
    """
    # PRIME, arXiv 2502.01456 / PURE, arXiv 2504.15275 sum-form (standard discounted return)
    rewards = torch.where(mask, token_rewards, torch.zeros_like(token_rewards))  # (B,T)
    if gamma == 1.0:
        returns = rewards.flip(-1).cumsum(-1).flip(-1)  # (B,T)
    else:
        returns = torch.zeros_like(rewards)  # (B,T)
        running = torch.zeros_like(rewards[:, 0])  # (B,)
        for t in range(rewards.shape[1] - 1, -1, -1):
            running = rewards[:, t] + gamma * running  # (B,)
            returns[:, t] = running  # (B,)
    return torch.where(mask, returns, torch.zeros_like(returns))  # (B,T)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8,
                  shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over the real positions of the whole batch (unbiased var), 0 elsewhere.

    PRIME's and PURE-verl's code whiten returns over the batch after the group baselines (PRIME, arXiv 2502.01456, PURE, arXiv 2504.15275).
    """
    # PRIME, arXiv 2502.01456 (PRIME code: "advantages = masked whitening of returns over the batch")
    n = mask.sum()  # ()
    x = torch.where(mask, values, torch.zeros_like(values))  # (B,T)
    mean = x.sum() / n  # ()
    var = torch.where(mask, (values - mean) ** 2, torch.zeros_like(values)).sum() / (n - 1).clamp(min=1)  # ()
    out = (values - mean) * torch.rsqrt(var + eps)  # (B,T)
    if not shift_mean:
        out = out + mean  # (B,T)
    return torch.where(mask, out, torch.zeros_like(out))  # (B,T)


# --------------------------------------------------------------------------------------------------
# PRIME, arXiv 2502.01456 PRIME
# --------------------------------------------------------------------------------------------------

def prime_reference_process_loo(token_process_rewards: torch.Tensor, mask: torch.Tensor,
                                groups: int | torch.Tensor) -> torch.Tensor:
    """The PRIME reference code's leave-one-out on process rewards (verl `recipe/prime` `masked_rloo`):

        r'_t = r_t * K/(K-1) - (1/(K-1)) sum_j mean_j
             = [r_t - (1/(K-1)) sum_{j!=i} mean_j] + (r_t - mean_i)/(K-1)

    with mean_j = r_phi(y_j)/|y_j| (row j's mean token reward) and K its group's size: the paper's
    per-token baseline plus a self-centring term. token_process_rewards, mask (B,T) -> (B,T), 0 on padding.
    """
    maskf = mask.to(token_process_rewards.dtype)  # (B,T)
    proc = token_process_rewards * maskf  # (B,T)
    lengths = maskf.sum(-1)  # (B,)
    if bool((lengths < 1).any()):
        raise InputError("every response needs at least one real token", field="mask")
    means = proc.sum(-1) / lengths  # (B,)
    index, num_groups = group_index(groups, means.shape[0], means.device)  # (B,)
    count = _group_sum(torch.ones_like(means), index, num_groups)[index]  # (B,)
    if bool((count < 2).any()):
        raise InputError("leave-one-out baselines need at least 2 responses in every group", field="groups")
    total = _group_sum(means, index, num_groups)[index]  # (B,)
    out = proc * (count / (count - 1))[:, None] - (total / (count - 1))[:, None]  # (B,T)
    return out * maskf  # (B,T)


def prime_advantages(outcome_rewards: torch.Tensor, token_process_rewards: torch.Tensor, mask: torch.Tensor,
                     groups: int | torch.Tensor, process_coef: float = 1.0, outcome_coef: float = 1.0,
                     gamma: float = 1.0, process_loo: str = "paper") -> torch.Tensor:
    """PRIME advantage (paper Alg. 1 line 11, PRIME, arXiv 2502.01456), per token:

        A_i^t = outcome_coef * [ r_i - (1/(G-1)) sum_{j!=i} r_j ]
              + process_coef * sum_{s=t}^{|y_i|} gamma^(s-t) [ r_i^s - (1/(G-1)) sum_{j!=i} r_phi(y_j)/|y_j| ]

    where r_i = outcome_rewards (B,), r_i^s = token_process_rewards (B,T) (already beta * log-ratio),
    r_phi(y_j) = sum of sample j's token process rewards and |y_j| its number of real tokens. The
    outcome term is undiscounted and broadcast to every real token; gamma applies to the process term only.
    With process_coef = 0 this is exactly RLOO on the outcomes, broadcast over tokens.

    `process_loo="reference"` uses the reference code's form instead (`prime_reference_process_loo`:
    the same baseline plus a self-centring (r_t - mean_i)/(G-1)). Not applied here (callers choose):
    batch whitening of the result (`masked_whiten`, PRIME code); verl's default coefficients are
    outcome 5, process 5 (after whitening only their ratio matters).
    """
    # PRIME, arXiv 2502.01456 (Cui et al. 2025, PRIME, Alg. 1 / eq. for the RLOO combined advantage)
    maskf = mask.to(token_process_rewards.dtype)  # (B,T)
    proc = token_process_rewards * maskf  # (B,T)
    lengths = maskf.sum(-1)  # (B,)
    if bool((lengths < 1).any()):
        raise InputError("every response needs at least one real token", field="mask")
    if process_loo == "reference":
        process_returns = token_returns(prime_reference_process_loo(proc, mask, groups), mask, gamma)  # (B,T)
    elif process_loo == "paper":
        per_token_mean = proc.sum(-1) / lengths  # (B,)   r_phi(y_j)/|y_j|
        process_baseline = _leave_one_out_mean(per_token_mean, groups)  # (B,)
        process_returns = token_returns(proc - process_baseline[:, None], mask, gamma)  # (B,T)
    else:
        raise InputError(f"process_loo must be 'paper' or 'reference', got {process_loo!r}", field="prime_loo")
    outcome_adv = rloo_advantages(outcome_rewards.to(proc.dtype), groups)  # (B,)
    adv = outcome_coef * outcome_adv[:, None] * maskf + process_coef * process_returns  # (B,T)
    return adv  # (B,T)


# --------------------------------------------------------------------------------------------------
# PURE, arXiv 2504.15275 PURE min-form credit assignment
# --------------------------------------------------------------------------------------------------

def min_form_weights(step_rewards: torch.Tensor, step_mask: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """PURE weights w_k = exp(-r_k/T) / sum_j exp(-r_j/T) over the real steps of each response, 0 on padding.

    T -> 0 puts all weight on the worst step; T -> inf gives uniform weights 1/S_i (PURE's
    `disable_weighted_reward`). A response with no real step gets all-zero weights.
    """
    # PURE, arXiv 2504.15275 (Cheng et al. 2025, PURE, approximate min-form; code `turn_process_reward_logits_to_reward`)
    if temperature <= 0:
        raise InputError(f"temperature must be > 0, got {temperature}", field="temperature")
    logits = torch.where(step_mask, -step_rewards / temperature,
                         torch.full_like(step_rewards, float("-inf")))  # (B,S)
    weights = torch.softmax(logits, dim=-1)  # (B,S) NaN on rows with no real step
    return torch.where(step_mask, weights, torch.zeros_like(weights))  # (B,S)


def min_form_rewards(step_rewards: torch.Tensor, step_mask: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Transformed step rewards r~_k = w_k * r_k (the quantity PURE writes onto each step's end token)."""
    # PURE, arXiv 2504.15275 (PURE: r~_k = w_k r_k)
    weights = min_form_weights(step_rewards, step_mask, temperature)  # (B,S)
    return weights * torch.where(step_mask, step_rewards, torch.zeros_like(step_rewards))  # (B,S)


def min_form_returns(step_rewards: torch.Tensor, step_mask: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Approximate min-form credit of each step: G_k = sum_{k' >= k, real} w_k' r_k' (gamma = 1).

    Limits (tested):
    * T -> 0: every step up to and including the worst step k* gets min_j r_j (= the strict min-form
      value `strict_min_returns`, since the global minimum lies ahead of them); steps after k* get -> 0,
      not their own running min — the softmax is over the whole response, as in PURE.
    * T -> inf: w_k = 1/S_i, so G_k = (1/S_i) * sum_{k' >= k} r_k'. "Min-form equals sum-form" in this
      limit means exactly: S_i * min_form_returns == sum-form returns (gamma = 1, undiscounted reward-to-go
      of the raw step rewards), row by row with S_i = number of real steps of response i; equivalently
      the credit of the first step is the *mean* step reward.
    """
    # PURE, arXiv 2504.15275 (PURE approximate min-form, sum-form return of w-weighted rewards)
    transformed = min_form_rewards(step_rewards, step_mask, temperature)  # (B,S)
    return token_returns(transformed, step_mask, 1.0)  # (B,S)


def strict_min_returns(step_rewards: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    """Strict min-form G_k = min_{k' >= k, real} r_k' (running min from the end), 0 on padded steps.

    Padded/non-step positions are skipped, not read as 0 (PURE, arXiv 2504.15275: a strict min over a grid with zeros degenerates).
    """
    # PURE, arXiv 2504.15275 (PURE verl branch "strict min-form")
    big = torch.finfo(step_rewards.dtype).max  # () float, stands in for +inf so padding never wins the min
    filled = torch.where(step_mask, step_rewards, torch.full_like(step_rewards, big))  # (B,S)
    running = torch.cummin(filled.flip(-1), dim=-1).values.flip(-1)  # (B,S)
    return torch.where(step_mask, running, torch.zeros_like(running))  # (B,S)


def step_to_token_rewards(step_rewards: torch.Tensor, step_end: torch.Tensor, step_mask: torch.Tensor,
                          num_tokens: int) -> torch.Tensor:
    """Place each real step's reward on its end token: token_rewards[b, step_end[b,k]] += step_rewards[b,k].

    `step_end` (B,S) long: index of the token closing step k (PURE: the "\\n\\n"/EOS token). Feed the
    result to `token_returns(..., gamma=1)` for token-level credit (tokens of step k get G_k).
    """
    # PURE, arXiv 2504.15275 (PURE: process rewards live on step-separator tokens, zero elsewhere)
    values = torch.where(step_mask, step_rewards, torch.zeros_like(step_rewards))  # (B,S)
    index = torch.where(step_mask, step_end, torch.zeros_like(step_end)).long()  # (B,S)
    out = torch.zeros(step_rewards.shape[0], num_tokens, dtype=step_rewards.dtype,
                      device=step_rewards.device)  # (B,T)
    return out.scatter_add_(1, index, values)  # (B,T)


def pure_token_baseline(step_rewards: torch.Tensor, step_mask: torch.Tensor, step_num_tokens: torch.Tensor,
                        response_lengths: torch.Tensor, groups: int | torch.Tensor) -> torch.Tensor:
    """PURE `reward_baseline=token`: r_k - b_i * n_k with b_i = (sum_{j!=i} R_j) / (sum_{j!=i} |y_j|).

    step_rewards (B,S): the (already min-form transformed) step rewards r~; R_j = sum of sample j's real
    step rewards; response_lengths (B,) = |y_j| in tokens; step_num_tokens (B,S) = n_k, tokens of step k
    (PURE's code counts a step's tokens *without* its separator token while |y| counts all response
    tokens — pass whatever convention your caller uses consistently). Summed over a response the baseline
    removes b_i * sum_k n_k ~= b_i |y_i|, so long and short responses pay per token, not per step (PURE, arXiv 2504.15275).
    The verifiable reward (VR = solved - 1, RLOO-baselined, added on EOS) is `rloo_advantages` on `solved`.
    """
    # PURE, arXiv 2504.15275 (PURE code `process_experiences`, token baseline)
    values = torch.where(step_mask, step_rewards, torch.zeros_like(step_rewards))  # (B,S)
    totals = values.sum(-1)  # (B,)
    lengths = response_lengths.to(values.dtype)  # (B,)
    index, num_groups = group_index(groups, values.shape[0], values.device)  # (B,)
    others_reward = _group_sum(totals, index, num_groups)[index] - totals  # (B,)
    others_length = _group_sum(lengths, index, num_groups)[index] - lengths  # (B,)
    if bool((others_length <= 0).any()):
        raise InputError("token baseline needs other responses with at least one token in every group",
                         field="response_lengths")
    per_token = others_reward / others_length  # (B,)  b_i
    baselined = values - per_token[:, None] * step_num_tokens.to(values.dtype)  # (B,S)
    return torch.where(step_mask, baselined, torch.zeros_like(baselined))  # (B,S)
