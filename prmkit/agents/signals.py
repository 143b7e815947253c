"""What turn-credit methods read, computed from a batch of episodes: padded token tensors, per-turn
index maps, the policy's probability of the gold answer after each turn (IGPO), implicit turn rewards
(iStar), anchor-state ids (GiGPO), action ids (ONI), and per-turn flags from the environment."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from prmkit.agents.env import Episode
from prmkit.agents.rollout import EpisodeTokens, attach_turn_extras  # noqa: F401  (re-exported)
from prmkit.errors import InputError


@dataclass
class TokenBatch:
    """Episodes as right-padded tensors for teacher forcing."""

    ids: torch.Tensor  # (B, T)
    attention: torch.Tensor  # (B, T)
    action_mask: torch.Tensor  # (B, T-1) bool: next-token positions that predict a generated action token
    old_logprobs: torch.Tensor  # (B, T-1) the sampler's log-probability of each such token
    turn_of_token: torch.Tensor  # (B, T-1) long: turn index of each predicted action token (-1 elsewhere)
    turn_mask: torch.Tensor  # (B, N) bool


def token_batch(tokens: list[EpisodeTokens], pad_id: int) -> TokenBatch:
    B, T = len(tokens), max(len(t.ids) for t in tokens)
    N = max(len(t.turn_ends) for t in tokens)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    attention = torch.zeros((B, T), dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.bool)
    old = torch.zeros((B, T))
    turn = torch.full((B, T), -1, dtype=torch.long)
    turn_mask = torch.zeros((B, N), dtype=torch.bool)
    for b, t in enumerate(tokens):
        L = len(t.ids)
        ids[b, :L] = torch.tensor(t.ids)
        attention[b, :L] = 1
        mask[b, :L] = torch.tensor(t.action_mask, dtype=torch.bool)
        old[b, :L] = torch.tensor(t.logprobs)
        start = t.prompt_len
        for k, end in enumerate(t.turn_ends):
            turn[b, start:end + 1] = k
            start = t.context_ends[k] if k < len(t.context_ends) else end + 1
        turn_mask[b, : len(t.turn_ends)] = True
    turn = torch.where(mask, turn, torch.full_like(turn, -1))
    return TokenBatch(ids, attention, mask[:, 1:], old[:, 1:], turn[:, 1:], turn_mask)


def token_logprobs(model, tb: TokenBatch) -> torch.Tensor:
    """log pi(y_t | y_<t) of every next token under `model` -> (B, T-1)."""
    logits = model(input_ids=tb.ids, attention_mask=tb.attention).logits[:, :-1].float()  # (B, T-1, V)
    return torch.log_softmax(logits, -1).gather(2, tb.ids[:, 1:, None])[..., 0]


def per_turn_sum(values: torch.Tensor, tb: TokenBatch) -> torch.Tensor:
    """Sum of (B, T-1) token values over each turn's action tokens -> (B, N)."""
    out = torch.zeros(tb.turn_mask.shape, dtype=values.dtype)
    idx = tb.turn_of_token.clamp(min=0)
    return out.scatter_add(1, idx, torch.where(tb.action_mask, values, torch.zeros_like(values)))


def to_tokens(per_turn: torch.Tensor, tb: TokenBatch) -> torch.Tensor:
    """Each action token gets its turn's value: (B, N) -> (B, T-1), 0 off action tokens."""
    vals = per_turn.gather(1, tb.turn_of_token.clamp(min=0))
    return torch.where(tb.action_mask, vals, torch.zeros_like(vals))


@torch.no_grad()
def answer_probs(model, tokens: list[EpisodeTokens], answer_ids: list[list[int]], pad_id: int,
                 batch_size: int = 256) -> torch.Tensor:
    """IGPO's p_t: the geometric-mean probability of the gold answer's tokens, teacher-forced after the
    prompt (t = 0) and after each turn's observation -> (B, N+1), 0 past an episode's end."""
    N = max(len(t.turn_ends) for t in tokens)
    rows, where = [], []
    for b, (t, ans) in enumerate(zip(tokens, answer_ids)):
        for k, end in enumerate([t.prompt_len] + t.context_ends):
            rows.append((t.ids[:end], ans))
            where.append((b, k))
    out = torch.zeros(len(tokens), N + 1)
    for c in range(0, len(rows), batch_size):
        chunk = rows[c:c + batch_size]
        T = max(len(ctx) + len(a) for ctx, a in chunk)
        ids = torch.full((len(chunk), T), pad_id, dtype=torch.long)
        att = torch.zeros((len(chunk), T), dtype=torch.long)
        for i, (ctx, a) in enumerate(chunk):
            seq = ctx + a
            ids[i, : len(seq)] = torch.tensor(seq)
            att[i, : len(seq)] = 1
        lp = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits.float(), -1)
        for i, (ctx, a) in enumerate(chunk):
            pos = torch.arange(len(ctx) - 1, len(ctx) + len(a) - 1)
            mean = lp[i, pos, torch.tensor(a)].mean()
            b, k = where[c + i]
            out[b, k] = mean.exp()
    return out


def implicit_turn_rewards(prm, policy_logprobs: torch.Tensor, tb: TokenBatch, beta: float) -> torch.Tensor:
    """iStar's turn reward beta * sum over the turn's action tokens of log pi_phi - log pi_old -> (B, N)
    (with gradient into the PRM `prm`)."""
    return beta * per_turn_sum(token_logprobs(prm, tb) - policy_logprobs, tb)


def text_id(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF


def anchor_states(episodes: list[Episode]) -> torch.Tensor:
    """GiGPO's state id of each turn: the problem and the set of observations seen before it (order-free,
    so two histories that revealed the same things are the same state) -> (B, N) long."""
    N = max(len(e.turns) for e in episodes)
    out = torch.zeros((len(episodes), N), dtype=torch.long)
    for b, e in enumerate(episodes):
        seen: set[str] = set()
        for k, turn in enumerate(e.turns):
            out[b, k] = text_id(e.problem_id + "|" + "|".join(sorted(seen)))
            if turn.observation:
                seen.add(turn.observation)
    return out


def action_ids(episodes: list[Episode]) -> torch.Tensor:
    N = max(len(e.turns) for e in episodes)
    out = torch.zeros((len(episodes), N), dtype=torch.long)
    for b, e in enumerate(episodes):
        for k, turn in enumerate(e.turns):
            out[b, k] = text_id(turn.action)
    return out


def gold_flags(episodes: list[Episode], key: str, required: bool = False) -> torch.Tensor:
    """(B, N) float of a per-turn gold field (`useful`, `valid`, `info_gain`, ...), 0 where unknown; with
    `required` a turn without the field is an InputError (a reward would otherwise read it as 0)."""
    N = max(len(e.turns) for e in episodes)
    out = torch.zeros((len(episodes), N))
    for b, e in enumerate(episodes):
        for k, turn in enumerate(e.turns):
            if required and key not in turn.gold:
                raise InputError(f"episode {e.problem_id}, turn {k}: the environment's gold lacks `{key}`, which "
                                 "this run's reward reads", field=f"gold.{key}")
            out[b, k] = float(turn.gold.get(key, 0.0))
    return out


def self_judgements(episodes: list[Episode]) -> torch.Tensor | None:
    """(B, N) the agent's own verdict on each turn's observation: 1 Yes, 0 No, NaN not judged; an episode
    without a final answer counts as not judged (ReSeek's code scores judgements only when it extracts an
    answer). None when no episode carries the environment's judgements."""
    if not any("judgements" in e.meta for e in episodes):
        return None
    out = torch.full((len(episodes), max(len(e.turns) for e in episodes)), float("nan"))
    for b, e in enumerate(episodes):
        for k, verdict in enumerate(e.meta.get("judgements") or []):
            if verdict is not None and e.finished and k < len(e.turns):
                out[b, k] = float(bool(verdict))
    return out


def relevance(episodes: list[Episode]) -> torch.Tensor | None:
    """(B, N) the environment's relevance of each turn's observation; None when it gives none."""
    if not any("relevance" in e.meta for e in episodes):
        return None
    out = torch.zeros((len(episodes), max(len(e.turns) for e in episodes)))
    for b, e in enumerate(episodes):
        for k, value in enumerate(e.meta.get("relevance") or []):
            out[b, k] = float(value)
    return out


def subgoal_flags(episodes: list[Episode]) -> torch.Tensor:
    """CALM's exact subgoal verdicts from the environment's gold: 1 on a turn whose `progress` (share of the
    needed facts revealed) rises, i.e. the turn achieves one of the subgoals the needed facts are."""
    out = torch.zeros((len(episodes), max(len(e.turns) for e in episodes)))
    for b, e in enumerate(episodes):
        before = 0.0
        for k, turn in enumerate(e.turns):
            if "progress" not in turn.gold:
                raise InputError(f"episode {e.problem_id}, turn {k}: the gym judge of subgoals needs the "
                                 "environment's per-turn `progress` gold, which it lacks", field="gold.progress")
            out[b, k] = float(turn.gold["progress"] > before)
            before = turn.gold["progress"]
    return out
