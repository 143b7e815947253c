"""`prmkit agent stats`: what an agent policy does on an environment's split, measured with exact turn gold."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from prmkit.agents.env import Episode


@dataclass
class AgentStatsConfig:
    """Success, first-wrong-turn histogram and tool-use hygiene of an agent policy on hopgym."""

    out: str = "runs/agent-stats"
    """output directory (stats.json, episodes.jsonl)"""
    model: str = ""
    """policy: local dir or hub id (empty: hopgym's shipped agent policy)"""
    split: str = "test"
    """hopgym split"""
    num_problems: int = 500
    """problems, one episode each"""
    temperature: float = 1.0
    """sampling temperature"""
    seed: int = 0
    """episode seed"""
    max_turns: int = 10
    """most actions per episode"""


def summarize(episodes: list[Episode]) -> dict:
    """Outcome and turn-gold statistics of finished episodes (each carrying `turn.gold`)."""
    n = len(episodes)
    ok = [e for e in episodes if e.outcome and e.outcome > 0.5]
    first = Counter(e.first_error for e in episodes if e.first_error is not None and e.first_error >= 0)
    wrong_total = sum(first.values())
    dirty_success = [e for e in ok if any(t.gold.get("wrong") or t.gold.get("hallucinated") for t in e.turns)]
    turns = [t for e in episodes for t in e.turns]
    return {
        "episodes": n,
        "success": len(ok) / max(1, n),
        "error_free_success": sum(1 for e in ok if e.first_error == -1) / max(1, n),
        "finished": sum(e.finished for e in episodes) / max(1, n),
        "first_wrong_turn_hist": {str(k): v for k, v in sorted(first.items())},
        "largest_first_wrong_turn_share": max(first.values()) / wrong_total if wrong_total else None,
        "success_through_wrong_or_hallucinated_turn": len(dirty_success) / max(1, len(ok)),
        "turns_mean": len(turns) / max(1, n),
        "redundant_share": sum(bool(t.gold.get("redundant")) for t in turns) / max(1, len(turns)),
        "hallucinated_share": sum(bool(t.gold.get("hallucinated")) for t in turns) / max(1, len(turns)),
    }


def run(cfg: AgentStatsConfig) -> dict:
    from prmkit.agents.env import get_env_task
    from prmkit.agents.hopgym import make_split
    from prmkit.agents.inputs import agent_policy
    from prmkit.agents.rollout import RolloutParams, play_episodes
    from prmkit.policy.hf import HFSampler
    from prmkit.schema import atomic_write_text

    problems = make_split(cfg.split, cfg.num_problems)  # validated before the model loads
    sampler = HFSampler.from_pretrained(agent_policy(cfg.model, "hopgym"), device="cpu", batch_size=256)
    params = RolloutParams(k=1, max_turns=cfg.max_turns, temperature=cfg.temperature, seed=cfg.seed)
    episodes, _ = play_episodes(sampler, get_env_task("hopgym"), problems, params)
    stats = {**summarize(episodes), "config": asdict(cfg)}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=2) + "\n")
    atomic_write_text(out / "episodes.jsonl", "".join(json.dumps(asdict(e)) + "\n" for e in episodes))
    for key in ("success", "error_free_success", "largest_first_wrong_turn_share",
                "success_through_wrong_or_hallucinated_turn", "redundant_share", "hallucinated_share"):
        value = stats[key]
        print(f"{key:45s} {value:.3f}" if isinstance(value, float) else f"{key:45s} {value}")
    print(f"first wrong turn histogram: {stats['first_wrong_turn_hist']}")
    return stats
