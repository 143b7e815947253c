"""`prmkit agent sample`: K episodes per problem, written as episodes and as turn traces (turns as steps).

The turn traces feed the single-turn tools unchanged: `prmkit train prm --data turns.jsonl` trains a
turn PRM, `prmkit eval processbench --data turns.jsonl` gives first-wrong-turn F1.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class AgentSampleConfig:
    """Sample multi-turn episodes with an agent policy; write episodes.jsonl and turns.jsonl (turn traces)."""

    out: str = "runs/agent-sample"
    """output directory"""
    model: str = ""
    """policy: local dir or hub id (empty: hopgym's shipped agent policy)"""
    env: str = "hopgym"
    """environment: a registered name (hopgym, calc) or package.module:factory"""
    problems: str = ""
    """problems JSONL (empty: hopgym's built-in --split)"""
    split: str = "dev"
    """hopgym split when --problems is empty"""
    num_problems: int = 100
    """problems to use"""
    k: int = 4
    """episodes per problem"""
    temperature: float = 1.0
    """sampling temperature"""
    seed: int = 0
    """episode seed"""
    max_turns: int = 10
    """most actions per episode"""
    labels: str = "gold"
    """turn labels of turns.jsonl: gold (the environment's exact turn gold), mc-hard / mc-soft (Monte Carlo
    values of each turn prefix from --mc-k continuations of the same policy), none"""
    mc_k: int = 4
    """continuations per turn prefix for mc labels"""


def run(cfg: AgentSampleConfig) -> Path:
    from prmkit.agents.env import get_env_task
    from prmkit.agents.inputs import agent_policy, agent_problems
    from prmkit.agents.rollout import RolloutParams, play_episodes
    from prmkit.agents.turns import episode_trace
    from prmkit.errors import InputError
    from prmkit.policy.hf import HFSampler
    from prmkit.schema import atomic_write_text, to_dict

    if cfg.labels not in ("gold", "mc-hard", "mc-soft", "none"):
        raise InputError(f"expected gold, mc-hard, mc-soft or none, got {cfg.labels!r}", field="labels")
    task = get_env_task(cfg.env)
    problems = agent_problems(cfg.problems, cfg.env, cfg.split, cfg.num_problems)
    sampler = HFSampler.from_pretrained(agent_policy(cfg.model, cfg.env), device="cpu", batch_size=256)
    params = RolloutParams(k=cfg.k, max_turns=cfg.max_turns, temperature=cfg.temperature, seed=cfg.seed)
    episodes, _ = play_episodes(sampler, task, problems, params)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "episodes.jsonl", "".join(json.dumps(asdict(e)) + "\n" for e in episodes))
    traces = [episode_trace(e, labels="gold" if cfg.labels == "gold" else "none") for e in episodes]
    if cfg.labels.startswith("mc-"):
        from prmkit.agents.turn_labels import mc_turn_labels, mc_turn_values

        mc = RolloutParams(k=cfg.mc_k, max_turns=cfg.max_turns, temperature=cfg.temperature, seed=cfg.seed + 1)
        values = mc_turn_values(sampler, task, {p.id: p for p in problems}, episodes, mc)
        for t, v in zip(traces, values):
            t.labels = mc_turn_labels(v, cfg.mc_k, cfg.labels[3:])
    atomic_write_text(out / "turns.jsonl", "".join(json.dumps(to_dict(t)) + "\n" for t in traces))
    ok = sum(1 for e in episodes if e.outcome and e.outcome > 0.5)
    print(f"{len(episodes)} episodes ({ok} successful) -> {out / 'episodes.jsonl'}, turn traces -> {out / 'turns.jsonl'}")
    return out
