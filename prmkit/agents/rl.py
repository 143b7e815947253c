"""`prmkit agent rl`: RL for a multi-turn tool-using agent with turn-level credit.

Each step: K episodes for each of `prompts_per_step` problems (`agents.rollout`), graded by the
environment; the turn-credit method (`agents.credit`) turns outcomes and its signals into per-turn
advantages; every action token of a turn gets its turn's advantage, prompt and observation tokens
get none; one PPO-clip pass updates the policy. Held-out success (and error-free success, where the
environment gives turn gold) is measured every `eval_every` steps on fixed seeds. A run directory
resumes from its last checkpoint (tensors and numbers only).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from prmkit.agents import judges, monitors, replay, rl_step, signals
from prmkit.agents.credit import TURN_CREDIT, compute_turn_advantages
from prmkit.agents.env import get_env_task
from prmkit.agents.inputs import SHIPPED_AGENT, agent_policy  # noqa: F401  (SHIPPED_AGENT re-exported)
from prmkit.agents.rollout import RolloutParams, play_episodes
from prmkit.errors import InputError
from prmkit.rl.lifecycle import eval_due, load_state, records_upto, save_state
from prmkit.rundir import check_resume, record_config


@dataclass
class AgentRLConfig:
    """RL for a multi-turn agent with turn-level credit (grpo, rloo, igpo, istar, spa, gigpo, attributed, ...)."""

    CLI_CHOICES = {"method": "prmkit.agents.credit:TURN_CREDIT"}  # --help lists the registered names

    out: str = "runs/agent-rl"
    """run directory (metrics.jsonl, config.json, checkpoint.pt); rerunning with the same --out resumes"""
    method: str = "grpo"
    """turn-credit method, as registered in prmkit/agents/credit/"""
    model: str = ""
    """policy: local dir or hub id (empty: hopgym's shipped agent policy)"""
    env: str = "hopgym"
    """environment: a registered name (hopgym, calc) or package.module:factory returning an EnvTask"""
    problems: str = ""
    """training problems JSONL (empty: the environment's built-in train split, hopgym only)"""
    eval_problems_file: str = ""
    """held-out problems JSONL (empty: the environment's built-in test split, hopgym only)"""
    steps: int = 30
    """policy steps"""
    prompts_per_step: int = 8
    """problems per step"""
    k: int = 8
    """episodes per problem"""
    lr: float = 3e-4
    """policy learning rate (Adam)"""
    minibatch: int = 32
    """episodes per optimizer step"""
    clip_eps: float = 0.2
    """PPO clip range"""
    grad_clip: float = 1.0
    """gradient-norm clip"""
    max_turns: int = 10
    """most actions per episode"""
    max_action_tokens: int = 24
    """most tokens per action"""
    temperature: float = 1.0
    """sampling temperature of training episodes"""
    eval_problems: int = 100
    """held-out problems (the environment's test split)"""
    eval_every: int = 5
    """steps between held-out evaluations (0: only at the start and the end)"""
    seed: int = 0
    """seed of problems, episodes and minibatch order"""
    gamma: float = 1.0
    """igpo: discount of turn returns"""
    ig_coef: float = 1.0
    """igpo: weight of the information-gain turn rewards (0 = outcome GRPO)"""
    weight: float = 1.0
    """istar, gigpo: weight of the step-level advantage (0 = outcome baseline)"""
    grounding: float = 0.5
    """spa: bonus of a turn whose action executed"""
    beta: float = 0.05
    """istar: beta of the implicit turn reward"""
    prm_lr: float = 1e-4
    """istar PRM / spa progress estimator learning rate (AdamW)"""
    attribution: str = "sotopia"
    """attributed: sotopia (importance x outcome) or epo (critical turns)"""
    judge_flip: float = 0.0
    """attributed, calm: probability of flipping each of the gym judge's verdicts"""
    spear_coef: float = 0.05
    """spear: bonus per tool call of a wrong episode"""
    spear_cap: float = 0.2
    """spear: most bonus of a wrong episode"""
    spear_decay_steps: int = 0
    """spear: steps over which the bonus decays to 0 (0 = constant)"""
    oni_coef: float = 0.4
    """oni: weight of the count-based intrinsic reward"""
    replay: int = 0
    """episodes replayed per step from SPEAR's self-imitation buffer (0 = off)"""
    replay_capacity: int = 64
    """replay: most episodes kept (oldest dropped first)"""
    replay_window: int = 5
    """replay: recent batches whose reward mean/std give the replay baseline (their medians)"""
    judge_model: str = ""
    """attributed, calm: an LM judge (local dir, hub id, or an OpenAI-compatible base URL) whose verdicts
    replace the gym's (empty: the gym's exact verdicts, flipped with --judge-flip)"""
    calm_coef: float = 0.1
    """calm: auxiliary reward of a turn the judge says achieves a subgoal (0 = outcome RLOO)"""
    turn_rm: str = "checker"
    """pure, hybrid: frozen turn reward model ('checker' = the environment's exact turn gold, 'checker:0.1' with
    10% of verdicts flipped)"""
    threads: int = 1
    """torch CPU threads (0 = torch's default)"""

    def __post_init__(self) -> None:
        if self.method not in TURN_CREDIT:
            raise InputError(f"unknown turn method {self.method!r}; expected one of {', '.join(sorted(TURN_CREDIT))}",
                             field="method")
        for name in ("steps", "prompts_per_step", "k", "minibatch", "max_turns", "max_action_tokens"):
            if getattr(self, name) < 1:
                raise InputError(f"expected {name} >= 1, got {getattr(self, name)}", field=name)
        for name in ("replay", "replay_capacity", "replay_window"):
            if getattr(self, name) < (0 if name == "replay" else 1):
                raise InputError(f"expected {name} >= {0 if name == 'replay' else 1}, got {getattr(self, name)}",
                                 field=name)
        if self.k < 2:
            raise InputError("group baselines need k >= 2 episodes per problem", field="k")


def _problems(cfg: AgentRLConfig, split: str, n: int, offset: int = 0):
    """`n` problems from the split's file (cycled from `offset`) or hopgym's built-in split."""
    path = cfg.problems if split == "train" else cfg.eval_problems_file
    if path:
        from prmkit.schema import read_problems

        pool = read_problems(path)
        if not pool:
            raise InputError("expected at least one problem", file=path)
        return [pool[(offset + i) % len(pool)] for i in range(n if split == "train" else min(n, len(pool)))]
    if cfg.env != "hopgym":
        flag = "--problems" if split == "train" else "--eval-problems-file"
        raise InputError(f"environment {cfg.env!r} has no built-in problems: pass {flag}", field=flag[2:])
    from prmkit.agents.hopgym import make_problem

    return [make_problem(split, offset + i) for i in range(n)]


def evaluate(sampler, task, problems, cfg: AgentRLConfig) -> dict:
    """Held-out success and error-free success, one episode per problem at fixed seeds."""
    params = RolloutParams(k=1, max_turns=cfg.max_turns, max_action_tokens=cfg.max_action_tokens,
                           temperature=1.0, seed=12_345)
    episodes, _ = play_episodes(sampler, task, problems, params)
    ok = [e.outcome > 0.5 for e in episodes]
    clean = [o and e.first_error == -1 for o, e in zip(ok, episodes)]
    return {"success": sum(ok) / len(ok), "error_free_success": sum(clean) / len(clean)}


class AgentRLRun:
    def __init__(self, cfg: AgentRLConfig):
        from prmkit.policy.hf import HFSampler

        self.cfg = cfg
        self.task = get_env_task(cfg.env)
        judges.check_env(cfg, self.task)
        self.eval_set = _problems(cfg, "test", cfg.eval_problems)  # inputs are checked before any model loads
        _problems(cfg, "train", 1)
        model = agent_policy(cfg.model, cfg.env)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.sampler = HFSampler.from_pretrained(model, device="cpu", batch_size=256)
        self.model = self.sampler.model
        torch.manual_seed(cfg.seed)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.models = rl_step.OnlineModels(cfg, self.model)
        self.out = Path(cfg.out)
        self.start = 0

    # -------------------------------------------------------------------------------------------
    def _state_parts(self) -> dict:
        return {"model": self.model, "opt": self.opt, **self.models.parts()}

    def save(self, step: int) -> None:
        save_state(self.out / "checkpoint.pt", self._state_parts(), step=step)

    def resume(self) -> None:
        path = self.out / "checkpoint.pt"
        check_resume(self.out, self.cfg, has_work=path.exists(), ignore=("threads",))
        state = load_state(path, self._state_parts(), optional=rl_step.OnlineModels.PARTS)
        if state is None:
            return
        self.start = int(state["step"])
        metrics = self.out / "metrics.jsonl"  # drop records of a step that ran after the last checkpoint
        if metrics.exists():
            metrics.write_text("".join(json.dumps(r) + "\n" for r in records_upto(metrics, self.start)))

    # -------------------------------------------------------------------------------------------
    def step(self, step: int) -> dict:
        cfg = self.cfg
        rng = random.Random(cfg.seed * 1_000_003 + step)
        problems = _problems(cfg, "train", cfg.prompts_per_step, offset=rng.randrange(10 ** 6) * cfg.prompts_per_step)
        params = RolloutParams(k=cfg.k, max_turns=cfg.max_turns, max_action_tokens=cfg.max_action_tokens,
                               temperature=cfg.temperature, seed=cfg.seed * 7_919 + step)
        episodes, tokens = play_episodes(self.sampler, self.task, problems, params)
        tok = self.sampler.tokenizer
        tb = signals.token_batch(tokens, tok.pad_token_id)
        answers = [list(tok(f"A:{problems[e.meta['group']].answer}\n", add_special_tokens=False)["input_ids"])
                   for e in episodes]
        batch, options, extra = rl_step.method_inputs(cfg, self.models, episodes, tokens, tb, answers,
                                                      tok.pad_token_id, step)
        adv = compute_turn_advantages(cfg.method, batch, **options)
        ppo_tb, token_adv, replay_log = tb, signals.to_tokens(adv, tb), {}
        if self.models.replay is not None:  # SPEAR's self-imitation replay (off by default)
            ppo_tb, token_adv, replay_log = replay.ppo_batch(
                self.models.replay, tokens, adv, batch.outcomes, batch.groups, cfg.replay,
                cfg.seed * 15_485_863 + step, tok.pad_token_id)
        record = {"step": step + 1, **rl_step.ppo_update(self.model, self.opt, ppo_tb, token_adv, cfg, step),
                  **replay_log,
                  **rl_step.update_online_models(self.models, batch, tb, tokens, cfg.beta),
                  "train_success": float(batch.outcomes.mean()),
                  "zero_variance_group_share": monitors.zero_variance_share(batch.outcomes, batch.groups),
                  "zero_advantage_group_share": monitors.zero_advantage_share(adv, batch.turn_mask, batch.groups),
                  **monitors.turn_shares(episodes)}
        record |= {k: v for k, v in extra.items() if k.startswith("judge/")}  # e.g. the LM judge's unparsed replies
        if "turn_rewards" in extra:
            record |= {f"turn_reward/{k}": v for k, v in
                       monitors.reward_agreement(extra["turn_rewards"], episodes, batch.turn_mask).items()}
        if record["zero_advantage_group_share"] == 1.0:
            print(f"step {step}: every group's advantages are 0 — this step updates nothing")
        return record

    def train(self) -> list[dict]:
        from prmkit.progress import progress

        self.out.mkdir(parents=True, exist_ok=True)
        self.resume()
        record_config(self.out, self.cfg)
        records = []
        log = open(self.out / "metrics.jsonl", "a")
        if self.start == 0:
            records.append({"step": 0, "eval": evaluate(self.sampler, self.task, self.eval_set, self.cfg)})
            log.write(json.dumps(records[-1]) + "\n")
        for step in progress(range(self.start, self.cfg.steps), desc=f"agent rl {self.cfg.method}",
                             initial=self.start, total=self.cfg.steps):
            record = self.step(step)  # its "step" is the number of steps done once it is applied
            done = step + 1
            if eval_due(done, self.cfg.steps, self.cfg.eval_every):
                record["eval"] = evaluate(self.sampler, self.task, self.eval_set, self.cfg)
            records.append(record)
            log.write(json.dumps(record) + "\n")
            log.flush()
            self.save(done)
        log.close()
        return records


def run(cfg: AgentRLConfig) -> list[dict]:
    records = AgentRLRun(cfg).train()
    last = next((r["eval"] for r in reversed(records) if "eval" in r), None)
    if last:
        print(f"held-out success {last['success']:.3f} (error-free {last['error_free_success']:.3f}) -> {cfg.out}")
    return records
