"""Turn-level credit methods (each registered under its name; shapes as in `registry`).

Every method reduces to an outcome baseline when its process term is switched off (tested):
IGPO with `ig_coef=0` and iStar/GiGPO with weight 0 are outcome GRPO/RLOO; SPA with a progress
estimate equal to the outcome on the last turn and no grounding bonus is RLOO; CALM with `coef=0` is
RLOO and ReSeek with p = n = 0 is GRPO.
"""

from __future__ import annotations

import torch

from prmkit.agents.credit.registry import (_broadcast, _loo_first_return, group_normalize, last_turn,
                                           turn_method, turn_returns)
from prmkit.rl.advantages import grpo_advantages, min_form_rewards, rloo_advantages


@turn_method("igpo")
def igpo(outcomes, groups, turn_mask, answer_probs, gamma: float = 1.0, ig_coef: float = 1.0):
    """IGPO (arXiv 2510.14967): turn reward = change of the policy's own (teacher-forced) probability of
    the gold answer over the turn, p_t - p_{t-1}, on every turn but the last, which gets the outcome;
    the rewards of a group (every episode, every rewarded turn) are normalised together, then turned
    into discounted turn returns. With `ig_coef=0` no turn but the last carries a reward."""
    last = last_turn(turn_mask)  # (B, N)
    gain = answer_probs[:, 1:] - answer_probs[:, :-1]  # (B, N)
    rewards = torch.where(last, outcomes[:, None].to(gain.dtype), ig_coef * gain)  # (B, N)
    rewarded = last | (turn_mask & (ig_coef != 0))  # (B, N)
    normed = group_normalize(rewards, rewarded, groups)  # (B, N)
    return turn_returns(normed, turn_mask, gamma)


@turn_method("istar")
def istar(outcomes, groups, turn_mask, step_rewards, weight: float = 1.0, baseline: str = "rloo"):
    """iStar / OPRL (arXiv 2509.19199): A = A^E + w A^S, with A^E the group advantage of episode outcomes and
    A^S the group advantage of the implicit PRM's turn rewards (pooled over every turn of the group)."""
    if baseline == "rloo":
        episode = rloo_advantages(outcomes, groups)
        step = group_normalize(step_rewards, turn_mask, groups, normalize_std=False)
        count = _turns_in_group(turn_mask, groups)  # (B, N): real turns in each turn's group
        step = step * count / (count - 1).clamp(min=1)  # centred on the leave-one-out mean
    else:
        episode = grpo_advantages(outcomes, groups)
        step = group_normalize(step_rewards, turn_mask, groups)
    return _broadcast(episode, turn_mask) + weight * step


def _turns_in_group(turn_mask: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    per_episode = turn_mask.sum(-1).to(torch.float32)  # (B,)
    total = torch.stack([per_episode[groups == g].sum() for g in groups])  # (B,)
    return total[:, None].expand(turn_mask.shape)


def istar_prm_loss(step_rewards: torch.Tensor, turn_mask: torch.Tensor, outcomes: torch.Tensor,
                   groups: torch.Tensor) -> tuple[torch.Tensor, int]:
    """iStar's trajectory-preference loss for the online PRM: Q(tau) = mean of its turn rewards;
    mean over (success, failure) pairs of one group of -log sigmoid(Q_s - Q_f). Returns (loss, pairs);
    with no pair the loss is 0 and carries no gradient signal."""
    q = (step_rewards * turn_mask).sum(-1) / turn_mask.sum(-1).clamp(min=1)  # (B,)
    win = (outcomes[:, None] > outcomes[None, :]) & (groups[:, None] == groups[None, :])  # (B, B)
    pairs = int(win.sum())
    if pairs == 0:
        return q.sum() * 0.0, 0
    diff = q[:, None] - q[None, :]  # (B, B)
    return -torch.nn.functional.logsigmoid(diff[win]).mean(), pairs


@turn_method("spa")
def spa(outcomes, groups, turn_mask, progress, valid, grounding: float = 0.5):
    """SPA-RL (arXiv 2505.20732): turn reward = the progress estimator's output (trained so a turn's outputs sum
    to the outcome) plus a grounding bonus for an action that executed; advantage = turn return minus the
    leave-one-out group mean of whole-episode returns."""
    rewards = progress + grounding * valid.to(progress.dtype)  # (B, N)
    g = turn_returns(rewards, turn_mask)  # (B, N)
    base = _loo_first_return(g[:, 0], groups)  # (B,)
    return g - base[:, None]


def spa_loss(progress: torch.Tensor, turn_mask: torch.Tensor, outcomes: torch.Tensor) -> torch.Tensor:
    """SPA's progress-estimator loss: mean over episodes of (sum_t c_t - R)^2."""
    return (((progress * turn_mask).sum(-1) - outcomes) ** 2).mean()


@turn_method("gigpo")
def gigpo(outcomes, groups, turn_mask, states, weight: float = 1.0, gamma: float = 0.95):
    """GiGPO (arXiv 2505.10978): episode-level GRPO advantage plus `weight` x a step-level advantage computed
    among the turns of one group that act in the same environment state (anchor states): each turn's
    discounted return normalised within its anchor group; a state visited once contributes 0."""
    episode = _broadcast(grpo_advantages(outcomes, groups), turn_mask)  # (B, N)
    rewards = torch.where(last_turn(turn_mask), outcomes[:, None].to(torch.float32), torch.zeros(turn_mask.shape))
    g = turn_returns(rewards, turn_mask, gamma)  # (B, N)
    keys = groups[:, None].expand_as(states) * (int(states.max()) + 1) + states  # (B, N) anchor ids
    step = torch.zeros_like(g)
    real = turn_mask.flatten()
    flat_keys, flat_g = keys.flatten()[real], g.flatten()[real]
    normed = group_normalize(flat_g, torch.ones_like(flat_g, dtype=torch.bool), flat_keys)
    step.view(-1)[real.nonzero().flatten()] = normed
    return episode + weight * step


@turn_method("attributed")
def attributed(outcomes, groups, turn_mask, judge, mode: str = "sotopia", gamma: float = 0.99):
    """Judge-attributed turn rewards. `sotopia` (Sotopia-RL, arXiv 2508.03905): r_t = judge_t x R, the judge's
    importance weight in [0, 1] of each turn; `epo` (EPO, arXiv 2502.12486): r_t = 1 on turns the judge marks
    critical, plus R on the last turn, discounted, each episode's returns divided by their largest |value|.
    Advantage: turn return minus the leave-one-out group mean of whole-episode returns."""
    if mode == "sotopia":
        g = turn_returns(judge * outcomes[:, None], turn_mask)
    elif mode == "epo":
        rewards = judge.to(torch.float32) + torch.where(last_turn(turn_mask), outcomes[:, None].float(), 0.0)
        g = turn_returns(rewards, turn_mask, gamma)
        g = g / g.abs().amax(-1, keepdim=True).clamp(min=1e-8)
    else:
        from prmkit.errors import InputError

        raise InputError(f"attributed mode must be 'sotopia' or 'epo', got {mode!r}", field="mode")
    return g - _loo_first_return(g[:, 0], groups)[:, None]


@turn_method("calm")
def calm(outcomes, groups, turn_mask, subgoals, coef: float = 0.1, gamma: float = 1.0):
    """CALM (arXiv 2409.12798): a judge decomposes the task into subgoals and says whether each transition
    achieves one; every achieved subgoal earns an auxiliary reward `coef` on its turn, added to the outcome
    on the last turn; turn returns minus the leave-one-out group mean of whole-episode returns (RLOO), so
    `coef=0` is outcome RLOO. The paper (a MiniHack study, no public code) fixes neither the auxiliary
    reward's size nor the learner: `coef` 0.1 (below any outcome), gamma 1 and the RLOO baseline are ours.
    `subgoals` (B, N) in [0, 1]: the judge's verdict per turn (the gym's exact one: the turn reveals a
    needed fact of the question's chain)."""
    rewards = coef * subgoals.to(torch.float32)
    rewards = rewards + torch.where(last_turn(turn_mask), outcomes[:, None].float(), 0.0)
    g = turn_returns(rewards, turn_mask, gamma)
    return g - _loo_first_return(g[:, 0], groups)[:, None]


def reseek_rewards(outcomes: torch.Tensor, turn_mask: torch.Tensor, self_judge: torch.Tensor,
                   relevance: torch.Tensor, p: float = 0.1, n: float = -0.05, tau: float = 0.5) -> torch.Tensor:
    """ReSeek's episode reward (arXiv 2510.00568; constants as TencentBAC/ReSeek's reseek_rerank.compute_score):
    R' = R + sum over the turns the agent judged (self_judge 1 = Yes, 0 = No, NaN = not judged) of
    Yes and the final answer right: +p; Yes and wrong: n/2 if relevance >= tau else n; No: n if
    relevance >= tau else 0.2 p. `relevance` stands in for the reranker's score of the gold answer against
    the turn's information. Per the reference code, "right" in the Yes branch is the final answer's exact
    match, not the information's; episodes without a final answer carry no judgements (see signals)."""
    judged = turn_mask & ~torch.isnan(self_judge)  # (B, N)
    yes = judged & (self_judge > 0.5)
    no = judged & (self_judge <= 0.5)
    high = relevance >= tau  # (B, N)
    right = (outcomes > 0.5)[:, None].expand_as(yes)
    bonus = torch.zeros(turn_mask.shape)
    bonus = torch.where(yes & right, p, bonus)
    bonus = torch.where(yes & ~right, torch.where(high, n * 0.5, n), bonus)
    bonus = torch.where(no, torch.where(high, n, 0.2 * p), bonus)
    return outcomes.to(torch.float32) + bonus.sum(-1)


@turn_method("reseek")
def reseek(outcomes, groups, turn_mask, self_judge, relevance, p: float = 0.1, n: float = -0.05, tau: float = 0.5):
    """Outcome GRPO on ReSeek's judge-shaped episode rewards (`reseek_rewards`); p = n = 0 is outcome GRPO."""
    shaped = reseek_rewards(outcomes, turn_mask, self_judge, relevance, p, n, tau)
    return _broadcast(grpo_advantages(shaped, groups), turn_mask)


def spear_rewards(outcomes: torch.Tensor, tool_calls: torch.Tensor, coef: float = 0.05, cap: float = 0.2,
                  step: int = 0, decay_steps: int = 0) -> torch.Tensor:
    """SPEAR's tool-call bonus (arXiv 2509.22601, after ReTool): a wrong episode earns coef x calls, at most
    `cap` (so it stays below any right one); right episodes are unchanged; the coefficient decays linearly
    to 0 over `decay_steps` RL steps (0 = no decay), the curriculum that stops it from buying calls."""
    scale = 1.0 if decay_steps <= 0 else max(0.0, 1.0 - step / decay_steps)
    bonus = torch.clamp(coef * scale * tool_calls.to(torch.float32), max=cap)
    return torch.where(outcomes > 0.5, outcomes.to(torch.float32), outcomes + bonus)


@turn_method("spear")
def spear(outcomes, groups, turn_mask, tool_calls, coef: float = 0.05, cap: float = 0.2, step: int = 0,
          decay_steps: int = 0):
    """Outcome GRPO on SPEAR's shaped episode rewards (`spear_rewards`)."""
    shaped = spear_rewards(outcomes, tool_calls, coef, cap, step, decay_steps)
    return _broadcast(grpo_advantages(shaped, groups), turn_mask)


def sil_advantages(rewards: torch.Tensor, recent_means: torch.Tensor, recent_stds: torch.Tensor) -> torch.Tensor:
    """SPEAR's self-imitation replay: a replayed episode's advantage against the median of recent batches'
    reward mean and std, kept only where positive."""
    a = (rewards - recent_means.median()) / (recent_stds.median() + 1e-6)
    return a.clamp(min=0.0)


def oni_intrinsic(action_ids: torch.Tensor, turn_mask: torch.Tensor, labels: torch.Tensor | None = None,
                  coef: float = 0.4, beta: float = 3.0) -> torch.Tensor:
    """ONI's count-based intrinsic turn reward (arXiv 2410.23022): coef x label(m) / N(m)^beta, N(m) the number of
    times the same action m has appeared so far in the episode (itself included), label(m) a judge's 0/1
    verdict that m is worth doing (1 for every action without a judge)."""
    out = torch.zeros(action_ids.shape)
    for b in range(action_ids.shape[0]):
        seen: dict[int, int] = {}
        for t in range(action_ids.shape[1]):
            if turn_mask[b, t]:
                m = int(action_ids[b, t])
                seen[m] = seen.get(m, 0) + 1
                out[b, t] = coef * (1.0 if labels is None else float(labels[b, t])) / seen[m] ** beta
    return out


@turn_method("oni")
def oni(outcomes, groups, turn_mask, action_ids, coef: float = 0.4, beta: float = 3.0, outcome_coef: float = 1.0):
    """Outcome plus ONI's intrinsic reward per turn; turn returns minus the leave-one-out group mean."""
    rewards = oni_intrinsic(action_ids, turn_mask, None, coef, beta)
    rewards = rewards + torch.where(last_turn(turn_mask), outcome_coef * outcomes[:, None].float(), 0.0)
    g = turn_returns(rewards, turn_mask)
    return g - _loo_first_return(g[:, 0], groups)[:, None]


@turn_method("pure")
def pure_turns(outcomes, groups, turn_mask, step_rewards, temperature: float = 0.1, process_coef: float = 1.0):
    """PURE's min-form credit (arXiv 2504.15275) on a turn PRM's probabilities: r = 2p - 1, weights
    softmax(-r/T) over the episode's turns, transformed rewards w_t r_t, plus the outcome on the last turn;
    turn returns minus the leave-one-out group mean of whole-episode returns."""
    r = min_form_rewards(2.0 * step_rewards - 1.0, turn_mask, temperature) * process_coef
    r = r + torch.where(last_turn(turn_mask), outcomes[:, None].float(), 0.0)
    g = turn_returns(r, turn_mask)
    return g - _loo_first_return(g[:, 0], groups)[:, None]


@turn_method("hybrid")
def hybrid(outcomes, groups, turn_mask, step_rewards):
    """Hybrid normalisation of turn PRM rewards against the outcome (ReNorm, arXiv 2509.25598): r_t = p_t + R - 1
    (>= 0 on right, <= 0 on wrong episodes); turn returns minus the leave-one-out group mean."""
    r = step_rewards + outcomes[:, None] - 1.0
    g = turn_returns(r, turn_mask)
    return g - _loo_first_return(g[:, 0], groups)[:, None]


# ------------------------------------------------------------------------------------------------
# baselines when the agent decides when to stop
# ------------------------------------------------------------------------------------------------
@turn_method("per_turn_index")
def per_turn_index(outcomes, groups, turn_mask, normalize_std: bool = True):
    """Per-turn-index normalisation (what several agent frameworks do): turn t's return normalised by the
    mean and std of the returns at index t over the group's episodes that reached turn t, self included.
    Biased when the policy controls termination (see `loo_turn_baseline`)."""
    rewards = torch.where(last_turn(turn_mask), outcomes[:, None].float(), 0.0)
    g = turn_returns(rewards, turn_mask)
    keys = groups[:, None] * turn_mask.shape[1] + torch.arange(turn_mask.shape[1])[None, :]  # (B, N)
    out = torch.zeros_like(g)
    out[turn_mask] = group_normalize(g[turn_mask], torch.ones_like(g[turn_mask], dtype=torch.bool),
                                     keys[turn_mask], normalize_std=normalize_std)
    return out


@turn_method("loo_turn")
def loo_turn_baseline(outcomes, groups, turn_mask):
    """An unbiased turn baseline when the agent controls termination: turn t's return minus the mean return
    at turn t of the *other* episodes of the group that reached turn t (0 when none did). The baseline
    never depends on the episode's own actions at or after turn t, so E[grad log pi x baseline] = 0; no
    std scaling, which would re-weight turns."""
    rewards = torch.where(last_turn(turn_mask), outcomes[:, None].float(), 0.0)
    g = turn_returns(rewards, turn_mask)  # (B, N)
    same = (groups[:, None] == groups[None, :]).float() - torch.eye(len(groups))  # (B, B) others in the group
    alive = turn_mask.float()  # (B, N)
    total = same @ (g * alive)  # (B, N) sum of the others' returns at each turn index
    count = same @ alive  # (B, N)
    base = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    return g - base
