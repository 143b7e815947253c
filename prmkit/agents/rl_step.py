"""One agent RL step's pieces: the inputs a turn-credit method needs, its online models (iStar's implicit
PRM, SPA's progress estimator) and the PPO update with observation tokens masked out."""

from __future__ import annotations

import copy
from typing import Any

import torch

from prmkit.agents import judges, signals
from prmkit.agents.credit import TurnBatch, istar_prm_loss, needs, spa_loss
from prmkit.agents.env import Episode
from prmkit.agents.replay import ReplayBuffer
from prmkit.rl.lifecycle import mean_stats, ppo_updates
from prmkit.rl.losses import ppo_clip_loss


class ProgressEstimator(torch.nn.Module):
    """SPA's progress estimator: a copy of the policy's backbone with a linear head read at each turn's
    last action token; trained so an episode's per-turn outputs sum to its outcome."""

    def __init__(self, policy_model):
        super().__init__()
        self.lm = copy.deepcopy(policy_model)
        self.head = torch.nn.Linear(self.lm.config.hidden_size, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, tb: signals.TokenBatch, turn_ends: torch.Tensor) -> torch.Tensor:
        """(B, N) outputs at `turn_ends` (B, N) token indices."""
        out = self.lm(input_ids=tb.ids, attention_mask=tb.attention, output_hidden_states=True)
        h = out.hidden_states[-1]  # (B, T, H)
        picked = h.gather(1, turn_ends[..., None].expand(-1, -1, h.shape[-1]))  # (B, N, H)
        return self.head(picked)[..., 0] * tb.turn_mask


def turn_end_index(tokens, n: int) -> torch.Tensor:
    out = torch.zeros((len(tokens), n), dtype=torch.long)
    for b, t in enumerate(tokens):
        out[b, : len(t.turn_ends)] = torch.tensor(t.turn_ends)
    return out


class OnlineModels:
    """The models a method trains beside the policy, made on first use."""

    PARTS = ("prm", "prm_opt", "progress", "progress_opt", "replay")

    def __init__(self, cfg, policy_model):
        self.cfg, self.policy_model = cfg, policy_model
        self.prm = self.prm_opt = self.progress = self.progress_opt = None
        if cfg.method in judges.LEARNS_TURN_PRM_ONLINE:
            self.prm = copy.deepcopy(policy_model)
            self.prm_opt = torch.optim.AdamW(self.prm.parameters(), lr=cfg.prm_lr, weight_decay=0.0)
        if cfg.method == "spa":
            self.progress = ProgressEstimator(policy_model)
            self.progress_opt = torch.optim.AdamW(self.progress.parameters(), lr=cfg.prm_lr, weight_decay=0.0)
        self.replay = ReplayBuffer(cfg.replay_capacity, cfg.replay_window) if cfg.replay else None
        self.lm_judge = None
        if cfg.judge_model and cfg.method in ("attributed", "calm"):
            from prmkit.agents.lm_judge import load_judge

            self.lm_judge = load_judge(cfg.judge_model)

    def parts(self) -> dict:
        """The models, optimizers and replay buffer this method has, by checkpoint name."""
        return {name: getattr(self, name) for name in self.PARTS if getattr(self, name) is not None}


def method_inputs(cfg, models: OnlineModels, episodes: list[Episode], tokens, tb: signals.TokenBatch,
                  answer_ids: list[list[int]], pad_id: int, step: int) -> tuple[TurnBatch, dict, dict]:
    """(TurnBatch with what `cfg.method` needs, the method's options, extra log fields)."""
    want = set(needs(cfg.method))
    outcomes = torch.tensor([float(e.outcome) for e in episodes])
    groups = torch.tensor([int(e.meta["group"]) for e in episodes])
    batch = TurnBatch(outcomes=outcomes, groups=groups, turn_mask=tb.turn_mask)
    log: dict[str, Any] = {}
    options = _options(cfg, step)
    if "answer_probs" in want:
        batch.answer_probs = signals.answer_probs(models.policy_model, tokens, answer_ids, pad_id)
        log["turn_rewards"] = batch.answer_probs[:, 1:] - batch.answer_probs[:, :-1]
    if "step_rewards" in want and models.prm is not None:
        with torch.no_grad():
            batch.step_rewards = signals.implicit_turn_rewards(models.prm, tb.old_logprobs, tb, cfg.beta)
        log["turn_rewards"] = batch.step_rewards
    elif "step_rewards" in want:
        batch.step_rewards = turn_checker_scores(episodes, cfg.turn_rm, step, cfg.seed)
        log["turn_rewards"] = batch.step_rewards
    if "progress" in want:
        with torch.no_grad():
            batch.progress = models.progress(tb, turn_end_index(tokens, tb.turn_mask.shape[1]))
        log["turn_rewards"] = batch.progress
    if "valid" in want:
        batch.valid = signals.gold_flags(episodes, "valid", required=bool(cfg.grounding)) > 0.5
    if "states" in want:
        batch.states = signals.anchor_states(episodes)
    if "judge" in want:
        batch.judge = _judge(episodes, cfg.judge_flip, step, cfg.seed)
    if "tool_calls" in want:
        batch.tool_calls = torch.tensor([float(sum(t.action[:2] in ("S:", "C:") for t in e.turns)) for e in episodes])
    if "action_ids" in want:
        batch.action_ids = signals.action_ids(episodes)
    log |= judges.fill_judged(batch, want, cfg, models, episodes, step)
    return batch, options, log


def _options(cfg, step: int) -> dict:
    return {"igpo": {"gamma": cfg.gamma, "ig_coef": cfg.ig_coef}, "istar": {"weight": cfg.weight},
            "spa": {"grounding": cfg.grounding}, "gigpo": {"weight": cfg.weight},
            "attributed": {"mode": cfg.attribution},
            "spear": {"coef": cfg.spear_coef, "cap": cfg.spear_cap, "step": step, "decay_steps": cfg.spear_decay_steps},
            "oni": {"coef": cfg.oni_coef}, "calm": {"coef": cfg.calm_coef}}.get(cfg.method, {})


def turn_checker_scores(episodes: list[Episode], spec: str, step: int, seed: int) -> torch.Tensor:
    """A frozen turn reward model from the environment's exact gold: 'checker' scores a turn 1 unless it is
    wrong, 'checker:<p>' flips each verdict with probability p (a noisy verifier)."""
    from prmkit.errors import InputError

    name, _, rate = spec.partition(":")
    if name != "checker":
        raise InputError(f"turn reward model {spec!r}: only 'checker' or 'checker:<flip rate>' for now",
                         field="turn_rm")
    right = 1.0 - signals.gold_flags(episodes, "wrong", required=True)
    flip = float(rate) if rate else 0.0
    if flip <= 0:
        return right
    g = torch.Generator().manual_seed(seed * 104_729 + step)
    return torch.where(torch.rand(right.shape, generator=g) < flip, 1.0 - right, right)


def _judge(episodes: list[Episode], flip: float, step: int, seed: int) -> torch.Tensor:
    """The gym's exact `useful` verdicts as a judge, each flipped with probability `flip` (a noisy judge)."""
    useful = signals.gold_flags(episodes, "useful", required=True)
    if flip <= 0:
        return useful
    g = torch.Generator().manual_seed(seed * 7_919 + step)
    flips = torch.rand(useful.shape, generator=g) < flip
    return torch.where(flips, 1.0 - useful, useful)


def update_online_models(models: OnlineModels, batch: TurnBatch, tb: signals.TokenBatch, tokens, beta: float) -> dict:
    """iStar's PRM preference step / SPA's estimator MSE step on this batch (after it was scored)."""
    log: dict[str, Any] = {}
    if models.prm is not None:
        r = signals.implicit_turn_rewards(models.prm, tb.old_logprobs, tb, beta)
        loss, pairs = istar_prm_loss(r, batch.turn_mask, batch.outcomes, batch.groups)
        if pairs:
            models.prm_opt.zero_grad(set_to_none=True)
            loss.backward()
            models.prm_opt.step()
        log |= {"prm/loss": float(loss.detach()) if pairs else None, "prm/pairs": pairs}
    if models.progress is not None:
        pred = models.progress(tb, turn_end_index(tokens, tb.turn_mask.shape[1]))
        loss = spa_loss(pred, batch.turn_mask, batch.outcomes)
        models.progress_opt.zero_grad(set_to_none=True)
        loss.backward()
        models.progress_opt.step()
        log["progress/loss"] = float(loss.detach())
    return log


def ppo_update(model, opt, tb: signals.TokenBatch, token_adv: torch.Tensor, cfg, step: int) -> dict:
    """One pass of PPO-clip over the batch in minibatches of episodes; only action tokens carry weight."""
    B = tb.ids.shape[0]

    def loss_fn(rows: torch.Tensor):
        sub = signals.TokenBatch(tb.ids[rows], tb.attention[rows], tb.action_mask[rows], tb.old_logprobs[rows],
                                 tb.turn_of_token[rows], tb.turn_mask[rows])
        lp = signals.token_logprobs(model, sub)
        loss, stats = ppo_clip_loss(lp, sub.old_logprobs, token_adv[rows], sub.action_mask, cfg.clip_eps)
        return loss, {"clip_frac": stats["clip_frac"]}

    model.train()
    stats = ppo_updates(model, opt, torch.arange(B), loss_fn,
                        generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + step), epochs=1,
                        minibatch=cfg.minibatch, grad_clip=cfg.grad_clip)
    model.eval()
    return mean_stats(stats)
