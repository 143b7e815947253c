"""`prmkit agent search`: best-of-N or beam search over turns with a turn reward model, on an environment's
problems; writes the chosen episodes, every candidate's score, success and the compute each method spent
(policy tokens generated and run, reward-model tokens), as `prmkit search` does for single-turn search."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from prmkit.agents.search import TurnSearchParams
from prmkit.errors import InputError

STRATEGIES = ("best-of-n", "beam")


@dataclass
class AgentSearchConfig(TurnSearchParams):
    """Turn-level search for an agent: best-of-N over episodes or beam over turns, scored by a turn RM."""

    out: str = "runs/agent-search"
    """output directory (results.json, episodes.jsonl)"""
    method: str = "best-of-n"
    """best-of-n or beam"""
    model: str = ""
    """policy: local dir or hub id (empty: hopgym's shipped agent policy); with --base-url, the served model's name"""
    base_url: str = ""
    """an OpenAI-compatible server to sample from (e.g. http://127.0.0.1:8000/v1 of prmkit serve-policy or vLLM);
    the context goes as token ids (token-id prompts and /tokenize), so episodes equal the local sampler's"""
    env: str = "hopgym"
    """environment: a registered name (hopgym, calc) or package.module:factory"""
    problems: str = ""
    """problems JSONL (empty: hopgym's built-in --split)"""
    split: str = "test"
    """hopgym split when --problems is empty"""
    num_problems: int = 50
    """problems to search"""
    turn_rm: str = "checker"
    """turn reward model: a reward-model dir / hub id (a PRM trained on turn traces), or 'checker' (the
    environment's exact turn gold), 'checker:0.1' (10% of its verdicts flipped)"""
    def __post_init__(self) -> None:
        from prmkit.agents.search import SELECT_RULES, checker_flip
        from prmkit.rewards.aggregate import AGGREGATIONS

        if self.method not in STRATEGIES:
            raise InputError(f"unknown method {self.method!r}; expected one of {', '.join(STRATEGIES)}", field="method")
        if self.select not in SELECT_RULES:
            raise InputError(f"unknown selection {self.select!r}; expected one of {', '.join(SELECT_RULES)}",
                             field="select")
        if self.aggregation not in AGGREGATIONS:
            raise InputError(f"unknown aggregation {self.aggregation!r}; expected one of {', '.join(AGGREGATIONS)}",
                             field="aggregation")
        for name in ("n", "m", "num_problems", "max_turns", "max_action_tokens"):
            if getattr(self, name) < 1:
                raise InputError(f"expected {name} >= 1, got {getattr(self, name)}", field=name)
        if self.lookahead < 0 or self.temperature < 0 or not 0.0 <= self.alpha <= 1.0:
            raise InputError("expected lookahead >= 0, temperature >= 0 and alpha in [0, 1]", field="lookahead")
        checker_flip(self.turn_rm)  # a bad checker spec fails here, before anything is read
        if self.lookahead and self.method != "beam":
            raise InputError("--lookahead applies to --method beam only", field="lookahead")


def _problems(cfg: AgentSearchConfig):
    from prmkit.agents.inputs import agent_problems

    return agent_problems(cfg.problems, cfg.env, cfg.split, cfg.num_problems)


def search(sampler, task, problems, rm, cfg: AgentSearchConfig) -> tuple[list, dict]:
    """Run the configured method; (results per problem, summary with success and compute)."""
    from prmkit.agents import search as S

    p = cfg  # the config is the search's parameters (it inherits TurnSearchParams)
    st = sampler.stats
    gen0, fwd0, rm0, t0 = st.generated_tokens, st.forward_tokens, rm.tokens_scored, time.perf_counter()
    run = S.best_of_n if cfg.method == "best-of-n" else S.beam
    results = run(sampler, task, problems, rm, p)
    gen, fwd = st.generated_tokens - gen0, st.forward_tokens - fwd0
    measured = fwd > 0 or gen == 0
    n = len(problems)
    summary = {"method": cfg.method, "problems": n, "select": cfg.select, "aggregation": cfg.aggregation,
               "n": cfg.n, "m": cfg.m if cfg.method == "beam" else None, "lookahead": cfg.lookahead,
               "success": sum(bool(r.chosen.outcome and r.chosen.outcome > 0.5) for r in results) / n,
               "oracle_success": sum(any(e.outcome and e.outcome > 0.5 for e in r.candidates) for r in results) / n,
               "candidates_per_problem": sum(len(r.candidates) for r in results) / n,
               "compute": {"policy_tokens": gen, "policy_forward_tokens": fwd if measured else gen,
                           "forward_measured": measured, "prm_tokens": rm.tokens_scored - rm0,
                           "policy_tokens_per_problem": gen / n, "prm_tokens_per_problem": (rm.tokens_scored - rm0) / n,
                           "wall_s": time.perf_counter() - t0}}
    return results, summary


def run(cfg: AgentSearchConfig) -> dict:
    from prmkit.agents.env import get_env_task
    from prmkit.agents.inputs import agent_policy
    from prmkit.agents.search import make_turn_rm
    from prmkit.policy.hf import HFSampler
    from prmkit.schema import atomic_write_text


    task = get_env_task(cfg.env)
    problems = _problems(cfg)
    policy = cfg.model if cfg.base_url else agent_policy(cfg.model, cfg.env)  # fails before the turn RM loads
    rm = make_turn_rm(cfg.turn_rm, task, cfg.seed)  # before the policy: a bad --turn-rm fails first
    if cfg.turn_rm.startswith("checker"):
        print(f"turn reward model: the environment's exact turn gold ({cfg.turn_rm})")
    if cfg.base_url:
        from prmkit.policy.openai import OpenAISampler

        sampler = OpenAISampler(base_url=cfg.base_url, model=cfg.model or None, token_prompts=True)
    else:
        sampler = HFSampler.from_pretrained(policy, device="cpu", batch_size=256)
    results, summary = search(sampler, task, problems, rm, cfg)
    summary["config"] = asdict(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"problem_id": r.chosen.problem_id, "chosen": asdict(r.chosen), "scores": r.scores,
                         "candidates": [asdict(e) for e in r.candidates]}) + "\n" for r in results]
    atomic_write_text(out / "episodes.jsonl", "".join(lines))
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    c = summary["compute"]
    print(f"{cfg.method}: success {summary['success']:.3f} (oracle {summary['oracle_success']:.3f}) on "
          f"{summary['problems']} problems; policy tokens {c['policy_tokens']} ({c['policy_tokens_per_problem']:.0f}"
          f"/problem), PRM tokens {c['prm_tokens']} -> {out / 'results.json'}")
    return summary
