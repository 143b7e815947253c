"""SPEAR's self-imitation replay for agent RL (arXiv 2509.22601), off unless `--replay` > 0.

After each step's episodes are scored, those with a positive outcome advantage (reward above their
group's mean) enter a FIFO buffer of at most `capacity` episodes, and the batch's reward mean and
(unbiased) std join a window of the `window` most recent batches. Before the next update, up to
`replay` buffered episodes (drawn at random among those whose recomputed advantage is positive) join
the PPO batch: each gets, on every turn, the advantage `sil_advantages` recomputes against the median
of the window's means and stds (kept where positive), and its stored sampling log-probabilities as the
old policy's (PPO's clip bounds the off-policy ratio). Which episodes to admit, the FIFO order and the
random draw are our choices where the paper's text leaves them open.
"""

from __future__ import annotations

import random
from dataclasses import asdict

import torch

from prmkit.agents.credit import sil_advantages
from prmkit.agents.rollout import EpisodeTokens


class ReplayBuffer:
    def __init__(self, capacity: int, window: int):
        self.capacity, self.window = capacity, window
        self.entries: list[tuple[EpisodeTokens, float]] = []  # (episode tokens, reward), oldest first
        self.means: list[float] = []
        self.stds: list[float] = []

    def add(self, tokens: list[EpisodeTokens], rewards: torch.Tensor, groups: torch.Tensor) -> int:
        """Record this batch's reward mean/std and admit its positive-advantage episodes; returns how many."""
        r = rewards.to(torch.float32)
        self.means = (self.means + [float(r.mean())])[-self.window:]
        self.stds = (self.stds + [float(r.std()) if len(r) > 1 else 0.0])[-self.window:]
        admitted = 0
        for b, t in enumerate(tokens):
            same = groups == groups[b]
            if float(r[b]) > float(r[same].mean()):
                self.entries.append((t, float(r[b])))
                admitted += 1
        self.entries = self.entries[-self.capacity:]
        return admitted

    def advantages(self) -> torch.Tensor:
        """Each buffered episode's recomputed advantage (>= 0) against the window's medians."""
        if not self.entries:
            return torch.zeros(0)
        rewards = torch.tensor([r for _, r in self.entries])
        return sil_advantages(rewards, torch.tensor(self.means), torch.tensor(self.stds))

    def draw(self, n: int, seed: int) -> tuple[list[EpisodeTokens], torch.Tensor]:
        """Up to `n` buffered episodes with a positive recomputed advantage (random, seeded) and those advantages."""
        adv = self.advantages()
        live = [i for i in range(len(self.entries)) if adv[i] > 0]
        picked = sorted(random.Random(seed).sample(live, min(n, len(live))))
        return [self.entries[i][0] for i in picked], adv[picked] if picked else torch.zeros(0)

    def state_dict(self) -> dict:
        return {"entries": [(asdict(t), r) for t, r in self.entries], "means": self.means, "stds": self.stds}

    def load_state_dict(self, state: dict) -> None:
        self.entries = [(EpisodeTokens(**t), float(r)) for t, r in state["entries"]]
        self.means, self.stds = list(state["means"]), list(state["stds"])


def with_replay(buffer: ReplayBuffer, tokens: list[EpisodeTokens], adv: torch.Tensor, n: int, seed: int):
    """(tokens, per-turn advantages) of the PPO batch with up to `n` replayed episodes appended -> (list, (B+R, N'))."""
    replayed, a = buffer.draw(n, seed)
    if not replayed:
        return tokens, adv, 0
    width = max(adv.shape[1], max(len(t.turn_ends) for t in replayed))
    out = torch.zeros((len(tokens) + len(replayed), width))
    out[: len(tokens), : adv.shape[1]] = adv
    for i, (t, value) in enumerate(zip(replayed, a.tolist())):
        out[len(tokens) + i, : len(t.turn_ends)] = value
    return tokens + replayed, out, len(replayed)


def ppo_batch(buffer: ReplayBuffer, tokens: list[EpisodeTokens], adv: torch.Tensor, outcomes: torch.Tensor,
              groups: torch.Tensor, n: int, seed: int, pad_id: int):
    """The step's PPO batch with up to `n` episodes replayed from earlier steps, then this step's episodes
    offered to the buffer -> (TokenBatch, token advantages, log fields)."""
    from prmkit.agents import signals

    all_tokens, all_adv, replayed = with_replay(buffer, tokens, adv, n, seed)
    tb = signals.token_batch(all_tokens, pad_id)
    admitted = buffer.add(tokens, outcomes, groups)
    return tb, signals.to_tokens(all_adv, tb), {"replay/episodes": replayed, "replay/admitted": admitted,
                                                 "replay/buffer": len(buffer.entries)}
