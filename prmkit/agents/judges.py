"""Judges of agent turns for the judge-attributed credit methods (EPO, Sotopia-RL, CALM, ReSeek): the
environment's exact verdicts (optionally flipped, a noisy judge) and the inputs those methods read."""

from __future__ import annotations

import torch

from prmkit.agents import signals
from prmkit.agents.credit import needs
from prmkit.agents.env import Episode, EnvTask
from prmkit.errors import InputError


# Methods whose turn rewards come from a PRM trained online beside the policy (iStar); every other method that
# needs step rewards reads them from `--turn-rm`, which scores by the environment's gold.
LEARNS_TURN_PRM_ONLINE = ("istar",)


def gold_needs(cfg) -> list[tuple[str, str, str]]:
    """(gold field, option that asks for it, why) for each per-turn gold field run `cfg` reads from the
    environment: the gym-style exact judges, checker and grounding that stand in when no model is given."""
    want, out = set(needs(cfg.method)), []
    if "judge" in want and not cfg.judge_model:
        out.append(("useful", "judge_model", f"{cfg.method}'s judge is the environment's exact `useful` verdicts "
                    "unless --judge-model names an LM judge"))
    if "subgoals" in want and not cfg.judge_model:
        out.append(("progress", "judge_model", f"{cfg.method}'s subgoal judge is the environment's exact `progress` "
                    "unless --judge-model names an LM judge"))
    if "step_rewards" in want and cfg.method not in LEARNS_TURN_PRM_ONLINE:
        out.append(("wrong", "turn_rm", f"--turn-rm {cfg.turn_rm} scores turns by the environment's exact `wrong` gold"))
    if "valid" in want and cfg.grounding:
        out.append(("valid", "grounding", "SPA's grounding bonus reads the environment's `valid` gold "
                    "(--grounding 0 turns it off)"))
    return out


def check_env(cfg, task: EnvTask) -> None:
    """Refuse, before any model loads, a run whose inputs this environment cannot give: ReSeek's judgements
    and relevance, and the per-turn gold that stands in for a judge or turn RM (`gold_needs`)."""
    method = cfg.method
    needed = gold_needs(cfg)
    if needed and task.gold is None:
        field, option, why = needed[0]
        raise InputError(f"environment {task.name!r} gives no per-turn gold (EnvTask.gold), and {why}: "
                         f"without it every turn would silently read {field}=0", field=option)
    if method == "reseek" and task.judgements is None:
        raise InputError(f"turn method 'reseek' needs the agent's own Yes/No judgement of its observations "
                         f"(EnvTask.judgements, ReSeek's JUDGE action), which environment {task.name!r} does "
                         "not give: hopgym's action grammar has no judge action and its shipped policy cannot "
                         "emit one", field="method")
    if method == "reseek" and task.relevance is None:
        raise InputError(f"turn method 'reseek' needs the relevance of each observation (EnvTask.relevance), "
                         f"which environment {task.name!r} does not give", field="method")


def flip(verdicts: torch.Tensor, rate: float, seed: int) -> torch.Tensor:
    """0/1 verdicts with each flipped with probability `rate` (a noisy judge), from a generator seeded by `seed`."""
    if rate <= 0:
        return verdicts
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(verdicts.shape, generator=g) < rate, 1.0 - verdicts, verdicts)


def fill_judged(batch, want: set, cfg, models, episodes: list[Episode], step: int) -> dict:
    """Set the judged fields `want` names on `batch`: `subgoals` (CALM), `self_judge` and `relevance` (ReSeek),
    and, with an LM judge (`models.lm_judge`), `judge` and `subgoals` from its verdicts. Returns log fields."""
    log: dict = {}
    if models.lm_judge is not None and ({"judge", "subgoals"} & want):
        from prmkit.agents.lm_judge import lm_verdicts

        mode = "subgoal" if "subgoals" in want else {"epo": "critical"}.get(cfg.attribution, "importance")
        verdicts = lm_verdicts(models.lm_judge, episodes, mode, seed=cfg.seed * 7_933 + step)
        setattr(batch, "subgoals" if "subgoals" in want else "judge", verdicts.values)
        log["judge/unparsed"] = verdicts.unparsed
    elif "subgoals" in want:
        batch.subgoals = flip(signals.subgoal_flags(episodes), cfg.judge_flip, cfg.seed * 7_927 + step)
    if "self_judge" in want:
        batch.self_judge = signals.self_judgements(episodes)
        if batch.self_judge is None:
            raise InputError("turn method 'reseek' needs the agent's own judgements, and no episode of this "
                             "batch carries any (EnvTask.judgements gave none)", field="method")
    if "relevance" in want:
        batch.relevance = signals.relevance(episodes)
    return log
