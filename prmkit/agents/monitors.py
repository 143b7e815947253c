"""What an agent RL step reports beside its loss: success, advantage collapse, tool-use hygiene, and
how well a method's turn rewards track the gym's exact information gain and usefulness."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from prmkit.agents.env import Episode


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n with ties given their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson on average ranks); None when either side is constant or n < 3."""
    if len(x) != len(y) or len(x) < 3:
        return None
    rx, ry = ranks(list(x)), ranks(list(y))
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    if vx == 0 or vy == 0:
        return None
    return cov / math.sqrt(vx * vy)


def zero_variance_share(outcomes: torch.Tensor, groups: torch.Tensor) -> float:
    """Share of groups whose episodes all got the same outcome (no outcome learning signal)."""
    flat = [bool((outcomes[groups == g] == outcomes[groups == g][0]).all()) for g in groups.unique()]
    return sum(flat) / max(1, len(flat))


def zero_advantage_share(adv: torch.Tensor, turn_mask: torch.Tensor, groups: torch.Tensor, eps: float = 1e-8) -> float:
    """Share of groups in which every real turn's advantage is 0 (the update learns nothing from them)."""
    out = []
    for g in groups.unique():
        rows = groups == g
        out.append(bool((adv[rows][turn_mask[rows]].abs() <= eps).all()))
    return sum(out) / max(1, len(out))


def turn_shares(episodes: list[Episode]) -> dict[str, float]:
    """Shares of turns the gym labels redundant / hallucinated / invalid, and mean turns and tool calls."""
    turns = [t for e in episodes for t in e.turns]
    gold = [t.gold for t in turns if t.gold]
    n = max(1, len(gold))
    calls = [sum(1 for t in e.turns if t.action[:2] in ("S:", "C:")) for e in episodes]
    return {"redundant_share": sum(bool(g.get("redundant")) for g in gold) / n,
            "hallucinated_share": sum(bool(g.get("hallucinated")) for g in gold) / n,
            "invalid_share": sum(not g.get("valid", True) for g in gold) / n,
            "turns_mean": len(turns) / max(1, len(episodes)),
            "tool_calls_mean": sum(calls) / max(1, len(calls))}


def reward_agreement(turn_rewards: torch.Tensor, episodes: list[Episode], turn_mask: torch.Tensor) -> dict:
    """Spearman of a method's per-turn rewards with the exact information gain and with `useful`, over the
    turns whose gold has that field (None where the environment gives none)."""
    out = {}
    for key in ("info_gain", "useful"):
        pairs = [(float(turn_rewards[b, k]), float(t.gold[key])) for b, e in enumerate(episodes)
                 for k, t in enumerate(e.turns) if turn_mask[b, k] and key in t.gold]
        out[f"spearman_{key}"] = spearman([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None
    return out
