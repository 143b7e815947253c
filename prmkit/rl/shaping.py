"""Process-reward shaping and guard rails against reward hacking (pure torch functions).

Shapes: B batch (responses), S steps, G group size; `step_mask` (B,S) bool, True = real step.
Outcomes: a response counts as *correct* when outcome > 0.5, which reads both {0, 1} and {-1, +1}
outcome encodings the same way. Outputs are 0 on padded steps; padding never changes a result.
Facts tagged [mem] in a comment were recalled from the paper, not re-verified (docs/methods.md).
"""

from __future__ import annotations

import math

import torch

from prmkit.errors import InputError
from prmkit.rl.advantages import group_index, rloo_advantages

CORRECT_THRESHOLD = 0.5


def _zero_pad(values: torch.Tensor, step_mask: torch.Tensor | None) -> torch.Tensor:
    """values with padded positions set to 0 (no-op without a mask)."""
    if step_mask is None:
        return values  # like values
    return torch.where(step_mask, values, torch.zeros_like(values))  # like values


# --------------------------------------------------------------------------------------------------
# PAV, arXiv 2410.08146 PAV
# --------------------------------------------------------------------------------------------------

def pav_effective_reward(q: torch.Tensor, progress: torch.Tensor, alpha: float,
                         step_mask: torch.Tensor | None = None) -> torch.Tensor:
    """PAV per-step reward Q^pi(s_h, a_h) + alpha * A^mu(s_h, a_h) (A^mu = prover progress of step h).

    q and progress have the same shape ((B,S) steps or (B,) one step each). alpha is a tuned scalar
    (values per model: [mem], PAV, arXiv 2410.08146). A^mu itself is the difference of consecutive prover
    values Q^mu_h - Q^mu_{h-1} (`pav_progress` on a frozen PRM's prefix values).
    """
    # PAV, arXiv 2410.08146 (Setlur et al. 2025, PAV, effective reward Q^pi + alpha A^mu)
    return _zero_pad(q + alpha * progress, step_mask)  # like q


def pav_progress(step_scores: torch.Tensor, step_mask: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """PAV progress A_k = V_k - V_{k-1} of a frozen PRM's prefix values (arXiv 2410.08146), with V before
    step 0 the leave-one-out group mean of the first-step values (E_a Q(s_0, a)) -> (B,S), 0 on padding."""
    first = torch.where(step_mask[:, 0], step_scores[:, 0], torch.zeros_like(step_scores[:, 0]))  # (B,)
    v0 = first - rloo_advantages(first, groups)  # (B,) leave-one-out mean of the others
    prev = torch.cat([v0[:, None], step_scores[:, :-1]], dim=1)  # (B,S)
    return torch.where(step_mask, step_scores - prev, torch.zeros_like(step_scores))  # (B,S)


# --------------------------------------------------------------------------------------------------
# PROF, arXiv 2509.03403 PROF
# --------------------------------------------------------------------------------------------------

def prof_consistency_scores(outcomes: torch.Tensor, mean_process: torch.Tensor,
                            num_steps: torch.Tensor | None = None, step_penalty: float = 0.0,
                            max_steps: int | None = None) -> torch.Tensor:
    """r_pro,i = (mean_process_i - lambda * 1[H_i = 1 or H_i >= H_lambda]) * sign_i, sign = +1 correct / -1 wrong.

    With num_steps None (or step_penalty 0) there is no penalty; with max_steps None only H = 1 is
    penalised. lambda and H_lambda values: [sec], not fixed by the spec.
    """
    # PROF, arXiv 2509.03403 (Ye et al. 2025, PROF, consistency score) [sec]
    score = mean_process.clone()  # (B,)
    if num_steps is not None and step_penalty != 0.0:
        flagged = num_steps == 1  # (B,)
        if max_steps is not None:
            flagged = flagged | (num_steps >= max_steps)  # (B,)
        score = score - step_penalty * flagged.to(score.dtype)  # (B,)
    sign = torch.where(outcomes > CORRECT_THRESHOLD, 1.0, -1.0).to(score.dtype)  # (B,)
    return score * sign  # (B,)


def prof_kept_counts(num_correct: int, num_wrong: int, keep: int) -> tuple[int, int]:
    """How many correct / wrong responses PROF keeps out of a group: as balanced as the group allows.

    Our reading of "remove from the larger side to balance" (PROF, arXiv 2509.03403; the paper's exact
    tie rule is unverified): kept_correct + kept_wrong = min(keep, n); |kept_correct - kept_wrong| is as
    small as feasible; when `keep` is odd the extra slot goes to the side that was larger in the group
    (the correct side on a tie).
    """
    # PROF, arXiv 2509.03403 (PROF balance rule, our reading)
    keep = min(keep, num_correct + num_wrong)
    target = (keep + 1) // 2 if num_correct >= num_wrong else keep // 2
    kept_correct = min(num_correct, max(target, keep - num_wrong))
    return kept_correct, keep - kept_correct


def prof_filter(outcomes: torch.Tensor, mean_process: torch.Tensor, groups: int | torch.Tensor,
                keep_per_group: int, *, num_steps: torch.Tensor | None = None, step_penalty: float = 0.0,
                max_steps: int | None = None, mode: str = "both",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """PROF consistency filter: which responses to keep for the GRPO update -> keep_mask (B,) bool.

    Per prompt group: split into correct / wrong (outcome > 0.5), pick kept counts with
    `prof_kept_counts`, then keep the correct responses with the *highest* consistency score
    (highest mean process value: drop flawed-but-lucky) and the wrong ones with the highest score
    (= lowest mean process value: drop good-process-but-wrong). Ties keep the earlier row.
    mode: "both" (Filter-Both), "correct" (rank only the correct side; the wrong side is thinned at
    random with `generator`, the safe choice for a weak PRM), "incorrect" (the mirror).
    Groups of size <= keep_per_group are kept whole. The GRPO statistics must then be computed over
    the kept rows only (PROF, arXiv 2509.03403 step 5).
    """
    # PROF, arXiv 2509.03403 (Ye et al. 2025, PROF, Alg. 1 — balance/tie rule is our reading)
    if mode not in ("both", "correct", "incorrect"):
        raise InputError(f"mode must be 'both', 'correct' or 'incorrect', got {mode!r}", field="mode")
    scores = prof_consistency_scores(outcomes, mean_process, num_steps, step_penalty, max_steps)  # (B,)
    index, num_groups = group_index(groups, outcomes.shape[0], outcomes.device)  # (B,)
    correct = outcomes > CORRECT_THRESHOLD  # (B,)
    keep = torch.zeros_like(correct)  # (B,)
    for g in range(num_groups):
        rows_c = torch.nonzero((index == g) & correct).flatten()  # (n+,)
        rows_w = torch.nonzero((index == g) & ~correct).flatten()  # (n-,)
        k_c, k_w = prof_kept_counts(len(rows_c), len(rows_w), keep_per_group)
        for rows, k, ranked in ((rows_c, k_c, mode != "incorrect"), (rows_w, k_w, mode != "correct")):
            if ranked:
                order = torch.sort(scores[rows], descending=True, stable=True).indices  # (n,)
            else:
                order = torch.randperm(len(rows), generator=generator).to(rows.device)  # (n,)
            keep[rows[order[:k]]] = True  # (B,)
    return keep  # (B,)


# --------------------------------------------------------------------------------------------------
# Posterior-GRPO, arXiv 2508.05170 Posterior-GRPO, ReNorm, arXiv 2509.25598 ReNorm, CAPO, arXiv 2508.02298 CAPO
# --------------------------------------------------------------------------------------------------

def posterior_gate(process_rewards: torch.Tensor, outcomes: torch.Tensor) -> torch.Tensor:
    """P-GRPO gate 1[outcome correct] * process_reward; process_rewards (B,) or (B, ...) broadcast over outcomes (B,).

    Full P-GRPO reward: R_i = r_format,i + r_outcome,i + posterior_gate(r~_think,i, r_outcome,i), with
    r~_think normalised within the group by the caller (exact normalisation: [mem], Posterior-GRPO, arXiv 2508.05170), then GRPO on R.
    """
    # Posterior-GRPO, arXiv 2508.05170 (Fan et al. 2025, Posterior-GRPO, posterior-gated thinking reward)
    shape = outcomes.shape + (1,) * (process_rewards.dim() - 1)
    correct = (outcomes > CORRECT_THRESHOLD).reshape(shape)  # (B, 1, ...)
    return torch.where(correct, process_rewards, torch.zeros_like(process_rewards))  # like process_rewards


def renorm(step_rewards: torch.Tensor, outcomes: torch.Tensor,
           step_mask: torch.Tensor | None = None) -> torch.Tensor:
    """ReNorm r^_t = r_p,t + r_o - 1 with r_p in [0,1], r_o in {0,1}: >= 0 on correct, <= 0 on wrong trajectories.

    step_rewards (B,S) or (B,); outcomes (B,) broadcast over steps.
    """
    # ReNorm, arXiv 2509.25598 (Xu et al. 2025, PPR/ReNorm) [mem: reconstructed equation]
    shaped = step_rewards + outcomes.reshape(outcomes.shape + (1,) * (step_rewards.dim() - 1)) - 1.0  # like step_rewards
    return _zero_pad(shaped, step_mask)  # like step_rewards


def capo_vote(step_flags: torch.Tensor, rule: str = "majority") -> torch.Tensor:
    """Combine C critiques' flags (C,B,S) bool (True = step judged wrong) into (B,S) float.

    "intersection": 1 if every critique flags the step; "majority": 1 if more than half do;
    "average": fraction of critiques that flag it.
    """
    # CAPO, arXiv 2508.02298 (Xie et al. 2025, CAPO, critique voting) [sec]
    flags = step_flags.to(torch.float32)  # (C,B,S)
    share = flags.mean(0)  # (B,S)
    if rule == "intersection":
        return (share == 1.0).to(share.dtype)  # (B,S)
    if rule == "majority":
        return (share > 0.5).to(share.dtype)  # (B,S)
    if rule == "average":
        return share  # (B,S)
    raise InputError(f"rule must be 'intersection', 'majority' or 'average', got {rule!r}", field="rule")


def capo_step_rewards(outcomes: torch.Tensor, step_flags: torch.Tensor, step_mask: torch.Tensor,
                      outcome_weight: float, process_weight: float) -> torch.Tensor:
    """CAPO per-step reward w_outcome * r_o - w_process * flag_k (every token of step k gets this value).

    Pick weights so the outcome dominates (a correct answer with flagged steps must still beat a wrong
    one); the paper's weight table is [mem] (CAPO, arXiv 2508.02298), so no defaults are given.
    """
    # CAPO, arXiv 2508.02298 (Xie et al. 2025, CAPO, outcome + asymmetric process penalty) [mem]
    shaped = outcome_weight * outcomes[:, None].to(step_flags.dtype) - process_weight * step_flags  # (B,S)
    return _zero_pad(shaped, step_mask)  # (B,S)


# --------------------------------------------------------------------------------------------------
# Gao et al. 2024, "On Designing Effective RL Reward at Training Time for LLM Reasoning"
# --------------------------------------------------------------------------------------------------

def clip_process_rewards(step_rewards: torch.Tensor, eta: float,
                         step_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Clip mechanism r'_k = min(r_k - eta, 0): capped at 0, so no step can earn positive reward (anti-hacking).

    [mem] recalled from Gao et al. 2024 (not in docs/methods.md); eta is the upper bound / threshold.
    """
    # Gao et al. 2024, arXiv 2410.15115, "Clip" mechanism [mem]
    return _zero_pad(torch.clamp(step_rewards - eta, max=0.0), step_mask)  # like step_rewards


def delta_process_rewards(step_rewards: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    """Delta mechanism r'_k = r_k - r_{k+1} (next *real* step), last real step r'_last = r_last.

    Telescoping: the undiscounted return sum_{k' >= k} r'_k' equals r_k, so a policy cannot gain by
    adding steps. [mem] recalled from Gao et al. 2024 (not in docs/methods.md).
    """
    # Gao et al. 2024, arXiv 2410.15115, "Delta" mechanism [mem]
    out = torch.zeros_like(step_rewards)  # (B,S)
    next_value = torch.zeros_like(step_rewards[:, 0])  # (B,)
    for k in range(step_rewards.shape[1] - 1, -1, -1):
        real = step_mask[:, k]  # (B,)
        out[:, k] = torch.where(real, step_rewards[:, k] - next_value, torch.zeros_like(next_value))  # (B,)
        next_value = torch.where(real, step_rewards[:, k], next_value)  # (B,)
    return out  # (B,S)


# --------------------------------------------------------------------------------------------------
# other shaping: PAR, Trust-GRPO trust weight, annealing, noise
# --------------------------------------------------------------------------------------------------

def par_reward(rewards: torch.Tensor, reference_rewards: torch.Tensor) -> torch.Tensor:
    """Preference-as-reward: (1/M) sum_m sigmoid(r - r_ref,m), in (0,1), = 0.5 when r equals the reference.

    rewards (B,); reference_rewards (B,) or (B,M) (M reference responses per prompt, averaged).
    Bounded and centred on the reference, so pushing the raw reward far past the reference earns little.
    """
    # Fu et al. 2025, "Reward Shaping to Mitigate Reward Hacking in RLHF" (PAR) [mem]
    refs = reference_rewards if reference_rewards.dim() == 2 else reference_rewards[:, None]  # (B,M)
    return torch.sigmoid(rewards[:, None] - refs).mean(-1)  # (B,)


def trust_weight(process_rewards: torch.Tensor, outcomes: torch.Tensor,
                 groups: int | torch.Tensor) -> torch.Tensor:
    """Trust-GRPO weight gamma in (0,1] per group, broadcast to its rows -> (B,).

    mu_c / mu_w = mean process (thinking) reward of the group's correct / wrong responses;
    gamma = 1 if mu_c >= mu_w else exp(mu_c - mu_w): a process reward that scores wrong answers above
    right ones is trusted less. gamma = 1 when a group has no correct or no wrong response (nothing to
    compare — our choice). Use: R_i = r_o,i + alpha_t * gamma * r_process,i, alpha_t from `anneal`.
    """
    # Fan et al. 2025, SophiaVL-R1, Trust-GRPO eqs. 1-3 [mem: correctness threshold 0.5, exp form]
    index, num_groups = group_index(groups, outcomes.shape[0], outcomes.device)  # (B,)
    correct = (outcomes > CORRECT_THRESHOLD).to(process_rewards.dtype)  # (B,)
    zeros = torch.zeros(num_groups, dtype=process_rewards.dtype, device=process_rewards.device)  # (num_groups,)
    n_c = zeros.clone().index_add_(0, index, correct)  # (num_groups,)
    n_w = zeros.clone().index_add_(0, index, 1.0 - correct)  # (num_groups,)
    mu_c = zeros.clone().index_add_(0, index, correct * process_rewards) / n_c.clamp(min=1)  # (num_groups,)
    mu_w = zeros.clone().index_add_(0, index, (1.0 - correct) * process_rewards) / n_w.clamp(min=1)  # (num_groups,)
    gamma = torch.where(mu_c >= mu_w, torch.ones_like(mu_c), torch.exp(mu_c - mu_w))  # (num_groups,)
    gamma = torch.where((n_c > 0) & (n_w > 0), gamma, torch.ones_like(gamma))  # (num_groups,)
    return gamma[index]  # (B,)


def anneal(coef0: float, step: int, total: int, kind: str = "linear") -> float:
    """Coefficient schedule for a process-reward weight, from coef0 at step 0.

    "constant": coef0; "linear": coef0 * (1 - step/total), 0 after `total`;
    "cosine": coef0 * 0.5 * (1 + cos(pi * step/total)), 0 after `total`;
    "exp": coef0 * exp(-step/total) (SophiaVL-R1's time-based annealing e^{-steps/T}, `total` = T).
    """
    # SophiaVL-R1 (Fan et al. 2025) annealing [sec]; linear/cosine are the usual schedules
    if total <= 0:
        raise InputError(f"total must be > 0, got {total}", field="total")
    frac = min(max(step, 0) / total, 1.0)
    if kind == "constant":
        return float(coef0)
    if kind == "linear":
        return float(coef0 * (1.0 - frac))
    if kind == "cosine":
        return float(coef0 * 0.5 * (1.0 + math.cos(math.pi * frac)))
    if kind == "exp":
        return float(coef0 * math.exp(-max(step, 0) / total))
    raise InputError(f"kind must be 'constant', 'linear', 'cosine' or 'exp', got {kind!r}", field="kind")


def inject_reward_noise(rewards: torch.Tensor, *, flip_prob: float | None = None, std: float | None = None,
                        generator: torch.Generator | None = None, values: tuple[float, float] = (0.0, 1.0),
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    """Seeded reward noise for robustness experiments; give exactly one of flip_prob / std.

    flip_prob: binary rewards taking the two `values` (lo, hi) are flipped r -> lo + hi - r, each
    independently with probability flip_prob (draw: torch.rand(shape, generator) < flip_prob).
    std: additive Gaussian noise r + std * N(0,1) (draw: torch.randn(shape, generator)).
    Padded positions (mask False) are returned unchanged. Same generator seed -> same noise.
    """
    # noisy-reward protocol (label-noise robustness experiments; no paper formula)
    if (flip_prob is None) == (std is None):
        raise InputError("give exactly one of flip_prob or std", field="flip_prob")
    real = torch.ones_like(rewards, dtype=torch.bool) if mask is None else mask  # like rewards
    if flip_prob is not None:
        lo, hi = values
        is_binary = (rewards == lo) | (rewards == hi)  # like rewards
        if not bool(is_binary[real].all()):
            raise InputError(f"reward flipping needs rewards in {values}", field="rewards")
        draw = torch.rand(rewards.shape, generator=generator, dtype=torch.float64).to(rewards.device)  # like rewards
        flipped = real & (draw < flip_prob)  # like rewards
        return torch.where(flipped, (lo + hi) - rewards, rewards)  # like rewards
    noise = torch.randn(rewards.shape, generator=generator, dtype=rewards.dtype).to(rewards.device)  # like rewards
    return torch.where(real, rewards + std * noise, rewards)  # like rewards
