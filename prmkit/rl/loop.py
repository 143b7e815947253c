"""`prmkit rl`: one RL loop for any HF causal LM with pluggable reward shaping.

Each step: draw prompts, sample K responses per prompt with the foundation's `HFSampler` wrapping
the model being trained, grade outcomes, score steps (frozen reward model, or PRIME's online
implicit PRM), turn rewards into token advantages with the method picked by `--reward`
(`ADVANTAGES` below), and run PPO-clip updates over minibatches. Held-out accuracy is measured every
`eval_every` steps on a fixed set of problems with fixed sampling seeds; reward-hacking monitors
are logged every step. A checkpoint (policy, optimizer, implicit PRM, monitor state, counters) is
written every `checkpoint_every` steps; a rerun with the same `--out` resumes from it and, since
every random draw is seeded by (seed, step), reproduces the metrics of an uninterrupted run.

Outputs in `--out`: config.json, metrics.jsonl (one record per step; `eval/accuracy` on eval
steps; step 0 = the starting policy), tb/ (TensorBoard), checkpoint/state.pt, policy/ (final model).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from prmkit.errors import InputError
from prmkit.lm import resolve_device
from prmkit.prompting import PromptOptions, note_unused_chat_template
from prmkit.rl import advantages as adv_fns
from prmkit.rl import shaping
from prmkit.rl.losses import kl_k3, masked_mean, ppo_clip_loss
from prmkit.rl.monitors import DriftMonitor, step_stats
from prmkit.rl.rollout import RolloutBatch, build_batch, response_logprobs


@dataclass
class RLConfig(PromptOptions):
    """RL on a causal LM with outcome and/or process rewards (GRPO, RLOO, PRIME, PURE, PAV, PROF, ...)."""

    out: str = "runs/rl"
    """run directory (metrics.jsonl, tb/, checkpoint/, policy/); rerunning with the same --out resumes"""
    reward: str = "grpo"
    """method: grpo, rloo, prime, pure, pure-sum, pav, prof, pgrpo, renorm, clip, delta, par, trust"""
    model: str = ""
    """policy to start from: local dir or hub id (empty: the shipped gym policy)"""
    prm: str = ""
    """frozen reward model for pure/pav/prof/...: a PRM dir or hub id, http(s)://host:port of `prmkit serve`,
    'gym' (the shipped gym PRM), 'checker[:flip_rate]' (the gym's exact checker, optionally noisy); empty: the
    shipped gym PRM, on gym problems only"""
    prm_token: str = ""
    """bearer token of a remote --prm server (empty: $PRMKIT_RM_TOKEN)"""
    problems: str = ""
    """training problems JSONL (empty: the gym split --split)"""
    split: str = "train"
    """gym split for training prompts when --problems is empty"""
    gym_max_ops: int = 0
    """gym only: most operations in a training prompt (0: the split's own range)"""
    eval_problems_file: str = ""
    """held-out problems JSONL (empty: --eval-split of the gym)"""
    eval_split: str = "test"
    """gym split for held-out evaluation"""
    eval_problems: int = 200
    """held-out problems evaluated every --eval-every steps"""
    eval_every: int = 5
    """steps between held-out evaluations (0: only at the start and the end)"""
    eval_temperature: float = 1.0
    """held-out sampling temperature (0 = greedy); seeds are fixed, so every evaluation reads the same draws"""
    steps: int = 40
    """policy steps"""
    prompts_per_step: int = 16
    """prompts sampled per step"""
    k: int = 8
    """responses per prompt"""
    lr: float = 5e-4
    """policy learning rate (Adam)"""
    lr_1d_mult: float = 1.0
    """learning-rate multiplier for 1-D parameters (norm scales, biases): lets the logit scale (the
    policy's sharpness) move at a useful speed while weight matrices stay at the safe --lr"""
    optimizer: str = "adam"
    """policy optimizer: adam or sgd"""
    warmup_steps: int = 0
    """linear learning-rate warmup over this many optimizer steps (Adam's first steps are sign-like and noisy)"""
    ppo_epochs: int = 1
    """passes over each batch"""
    minibatch: int = 64
    """responses per optimizer step"""
    clip_eps: float = 0.2
    """PPO clip range"""
    kl_coef: float = 0.0
    """weight of the k3 KL(pi || pi_ref) penalty"""
    grad_clip: float = 1.0
    """gradient-norm clip"""
    max_new_tokens: int = 96
    """most tokens per response"""
    temperature: float = 1.0
    """training sampling temperature"""
    sep: str = "\n"
    """step separator of the policy's solutions"""
    outcome_coef: float = 1.0
    """weight of the outcome advantage in dense methods (prime, pav, renorm, clip, delta)"""
    process_coef: float = 1.0
    """weight of the process term (0 turns prime into RLOO on outcomes)"""
    process_anneal: str = "constant"
    """schedule of the process weight over the run: constant, linear, cosine, exp"""
    whiten: bool = False
    """whiten advantages over the batch, any method (prime: see --prime-whiten)"""
    acc_filter: str = "auto"
    """keep only prompts whose accuracy lies in [acc_lower, acc_upper]: on, off, auto (= on for prime); any method"""
    acc_filter_mode: str = "refill"
    """refill: keep sampling prompts until the batch holds --prompts-per-step that pass (PRIME's code); drop:
    train on the rows that pass"""
    refill_oversample: float = 4.0
    """refill: each round samples this many times the prompts still needed (verl's PRIME recipe: 4)"""
    refill_max_rounds: int = 8
    """refill: most sampling rounds per step (then the batch is topped up with failing prompts, which the filter drops)"""
    acc_lower: float = 0.2
    """accuracy filter lower bound (inclusive)"""
    acc_upper: float = 0.8
    """accuracy filter upper bound (inclusive)"""
    prime_beta: float = 0.05
    """PRIME: implicit reward scale beta"""
    prime_lr: float = 1e-6
    """PRIME: learning rate of the online implicit PRM (reference: 1e-6; prmkit's first PRIME: 1e-4)"""
    prime_optimizer: str = "adamw"
    """PRIME: optimizer of the implicit PRM, adamw (reference) or adam"""
    prime_weight_decay: float = 0.0
    """PRIME: weight decay of the implicit PRM's optimizer (reference: 0)"""
    prime_grad_clip: float = 10.0
    """PRIME: gradient-norm clip of the implicit PRM (reference: 10)"""
    prime_passes: int = 1
    """PRIME: CE passes of the implicit PRM over each step's rollouts"""
    prime_loss_scale: str = "minibatch"
    """PRIME: minibatch (mean CE per minibatch, reference) or rows (scaled by the minibatch's share of the rows)"""
    prime_norm: str = "batch_norm"
    """PRIME: process-reward normalisation, batch_norm (divide by the batch's largest |reverse cumsum|) or none"""
    prime_granularity: str = "token"
    """PRIME: token (reward on every token) or whole (the response's summed reward on its last token)"""
    prime_loo: str = "reference"
    """PRIME: leave-one-out on process rewards, reference (with the self-centring term) or paper"""
    prime_whiten: bool = True
    """PRIME: whiten advantages over the batch (the reference always does)"""
    pure_credit: str = "min"
    """PURE credit assignment: min (softmax-T), strict (running min), sum, mean (uniform weights)"""
    pure_temperature: float = 0.1
    """PURE softmax temperature T"""
    vr_coef: float = 1.0
    """PURE: weight of the verifiable (outcome) reward added on the last token"""
    pav_alpha: float = 1.0
    """PAV: weight alpha of the progress term"""
    prof_keep: int = 4
    """PROF: responses kept per prompt"""
    clip_eta: float = 0.5
    """Clip mechanism threshold eta"""
    outcome_flip: float = 0.0
    """noisy-reward experiments: flip each outcome reward with this probability (metrics keep the true outcome)"""
    process_noise_std: float = 0.0
    """noisy-reward experiments: Gaussian noise added to frozen step scores"""
    seed: int = 0
    """seed of prompt draws, sampling and minibatch order"""
    eval_seed: int = 12345
    """sampling seed of held-out evaluation"""
    device: str = ""
    """torch device of the policy, reference and reward model (empty = cuda if visible, else cpu)"""
    dtype: str = "float32"
    """model dtype"""
    checkpoint_every: int = 1
    """steps between checkpoints (0: none)"""
    stop_after: int = 0
    """stop after this many steps of this invocation (0: run to --steps); the run resumes later"""
    tensorboard: bool = True
    """also log metrics to TensorBoard (tb/)"""
    save_policy: bool = True
    """save the final policy to policy/"""
    threads: int = 0
    """torch CPU threads (0: leave as is)"""


# ----------------------------------------------------------------------------------------------
# reward models
# ----------------------------------------------------------------------------------------------

def load_reward_model(spec: str, device: str = "", token: str = "", gym_data: bool = True):
    """A frozen reward model from a spec string (`prmkit.resolve`'s grammar) on `device`; returns (rm, description)."""
    from prmkit.resolve import parse_rm_spec

    checked = parse_rm_spec(spec, "prm", gym_data, token)
    return checked.load(device=device), checked.describe()


# ----------------------------------------------------------------------------------------------
# advantages per method
# ----------------------------------------------------------------------------------------------

@dataclass
class MethodContext:
    """What a method's advantage function may read besides the batch."""

    cfg: RLConfig
    process_coef: float
    outcomes: torch.Tensor  # (B,) the rewarded outcomes (noisy when --outcome-flip > 0)


def _broadcast(per_row: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B,T) on real tokens."""
    return per_row[:, None].to(torch.float32) * mask.to(torch.float32)  # (B,T)


def _mean_step_score(batch: RolloutBatch) -> torch.Tensor:
    """Mean frozen step score of each row over its real steps (0 with no step) -> (B,)."""
    return masked_mean(batch.step_scores, batch.step_mask, dim=-1)  # (B,)


def _per_step_to_tokens(values: torch.Tensor, batch: RolloutBatch, outside: torch.Tensor | None = None) -> torch.Tensor:
    """(B,S) per-step values -> (B,T): each token gets its step's value (`outside` (B,) or 0 after the last step)."""
    B, S = values.shape
    fill = torch.zeros(B, 1) if outside is None else outside[:, None].to(values.dtype)  # (B,1)
    padded = torch.cat([torch.where(batch.step_mask, values, torch.zeros_like(values)), fill], dim=1)  # (B,S+1)
    out = padded.gather(1, batch.step_of_token.clamp(max=S))  # (B,T)
    return torch.where(batch.response_mask, out, torch.zeros_like(out))  # (B,T)


def _dense(batch: RolloutBatch, ctx: MethodContext, step_rewards: torch.Tensor) -> torch.Tensor:
    """Outcome RLOO + returns of step rewards placed on step-end tokens, with PRIME's leave-one-out
    per-token baseline (PRIME, arXiv 2502.01456 applied to any per-step reward)."""
    T = batch.num_response_tokens
    batch.step_rewards = torch.where(batch.step_mask, step_rewards, torch.zeros_like(step_rewards))
    tok = adv_fns.step_to_token_rewards(step_rewards, batch.step_end, batch.step_mask, T)  # (B,T)
    batch.token_rewards = tok
    return adv_fns.prime_advantages(ctx.outcomes, tok, batch.response_mask, batch.groups,
                                    process_coef=ctx.process_coef, outcome_coef=ctx.cfg.outcome_coef)  # (B,T)


def adv_grpo(batch, ctx):
    return _broadcast(adv_fns.grpo_advantages(ctx.outcomes, batch.groups), batch.response_mask)


def adv_rloo(batch, ctx):
    return _broadcast(adv_fns.rloo_advantages(ctx.outcomes, batch.groups), batch.response_mask)


def adv_prime(batch, ctx):
    # PRIME, arXiv 2502.01456: batch.token_rewards = beta * log(pi_phi/pi_ref), set by the implicit PRM
    if batch.token_rewards is None:
        raise ValueError("prime needs batch.token_rewards from the implicit PRM")
    return adv_fns.prime_advantages(ctx.outcomes, batch.token_rewards, batch.response_mask, batch.groups,
                                    process_coef=ctx.process_coef, outcome_coef=ctx.cfg.outcome_coef,
                                    process_loo=ctx.cfg.prime_loo)


def pure_step_rewards(step_scores: torch.Tensor, step_mask: torch.Tensor, credit: str,
                      temperature: float) -> torch.Tensor:
    """PURE's per-step reward r~ before the baseline: PRM probability p -> r = 2p - 1 (= p(+) - p(-),
    PURE, arXiv 2504.15275), then min (w_k r_k, softmax-T weights), mean (r_k / S_i, uniform weights) or sum (r_k)."""
    r = 2.0 * step_scores - 1.0  # (B,S)
    if credit == "min":
        return adv_fns.min_form_rewards(r, step_mask, temperature)  # (B,S)
    if credit == "mean":
        n = step_mask.sum(-1, keepdim=True).clamp(min=1).to(r.dtype)  # (B,1)
        return torch.where(step_mask, r / n, torch.zeros_like(r))  # (B,S)
    if credit == "sum":
        return torch.where(step_mask, r, torch.zeros_like(r))  # (B,S)
    raise InputError(f"pure credit must be 'min', 'strict', 'sum' or 'mean', got {credit!r}", field="pure_credit")


def _pure(batch, ctx, credit: str):
    # PURE, arXiv 2504.15275: token baseline on the (transformed) step rewards, verifiable reward (solved - 1,
    # RLOO-baselined) on the last token, advantages = reverse cumsum (gamma 1)
    cfg, mask, T = ctx.cfg, batch.response_mask, batch.num_response_tokens
    lengths = mask.sum(-1)  # (B,)
    vr = adv_fns.rloo_advantages(ctx.outcomes - 1.0, batch.groups) * cfg.vr_coef  # (B,)
    last = (lengths - 1).clamp(min=0)  # (B,)
    vr_tok = torch.zeros(mask.shape).scatter_(1, last[:, None], vr[:, None])  # (B,T)
    if credit == "strict":
        r = 2.0 * batch.step_scores - 1.0  # (B,S)
        values = adv_fns.strict_min_returns(r, batch.step_mask)  # (B,S) G_k = min of future steps
        first = torch.where(batch.step_mask[:, 0], values[:, 0], torch.zeros_like(values[:, 0]))  # (B,)
        base = first - adv_fns.rloo_advantages(first, batch.groups)  # (B,) leave-one-out mean of G_0
        batch.step_rewards = values
        process = _per_step_to_tokens(values - base[:, None], batch) * ctx.process_coef  # (B,T)
        return process + adv_fns.token_returns(vr_tok, mask)  # (B,T)
    transformed = pure_step_rewards(batch.step_scores, batch.step_mask, credit, cfg.pure_temperature)  # (B,S)
    prev_end = torch.cat([torch.full_like(batch.step_end[:, :1], -1), batch.step_end[:, :-1]], dim=1)  # (B,S)
    step_tokens = torch.where(batch.step_mask, batch.step_end - prev_end, torch.zeros_like(prev_end))  # (B,S)
    baselined = adv_fns.pure_token_baseline(transformed, batch.step_mask, step_tokens, lengths, batch.groups)
    batch.step_rewards = transformed
    tok = adv_fns.step_to_token_rewards(baselined, batch.step_end, batch.step_mask, T) * ctx.process_coef
    batch.token_rewards = tok
    return adv_fns.token_returns(tok + vr_tok, mask)  # (B,T)


def adv_pure(batch, ctx):
    return _pure(batch, ctx, ctx.cfg.pure_credit)


def adv_pure_sum(batch, ctx):
    return _pure(batch, ctx, "sum")


def adv_pav(batch, ctx):
    # PAV, arXiv 2410.08146: each step's tokens get Q^pi (outcome RLOO advantage) + alpha * A^mu; A^mu_k = V_k - V_{k-1}
    # from the frozen PRM's prefix values, V before step 0 = the group's mean first-step value (E_a Q(s_0, a))
    s, m = batch.step_scores, batch.step_mask  # (B,S)
    first = torch.where(m[:, 0], s[:, 0], torch.zeros_like(s[:, 0]))  # (B,)
    v0 = first - adv_fns.rloo_advantages(first, batch.groups)  # (B,) leave-one-out group mean
    prev = torch.cat([v0[:, None], s[:, :-1]], dim=1)  # (B,S)
    progress = torch.where(m, s - prev, torch.zeros_like(s))  # (B,S)
    outcome_adv = adv_fns.rloo_advantages(ctx.outcomes, batch.groups) * ctx.cfg.outcome_coef  # (B,)
    effective = shaping.pav_effective_reward(outcome_adv[:, None].expand_as(s), progress,
                                             ctx.cfg.pav_alpha * ctx.process_coef, m)  # (B,S)
    batch.step_rewards = progress
    return _per_step_to_tokens(effective, batch, outside=outcome_adv)  # (B,T)


def adv_prof(batch, ctx):
    # PROF, arXiv 2509.03403: keep a balanced, process-consistent subset per prompt, GRPO over the kept rows only
    keep = shaping.prof_filter(ctx.outcomes, _mean_step_score(batch), batch.groups, ctx.cfg.prof_keep)  # (B,)
    adv = torch.zeros_like(ctx.outcomes)  # (B,)
    rows = torch.nonzero(keep).flatten()
    adv[rows] = adv_fns.grpo_advantages(ctx.outcomes[rows], batch.groups[rows])
    batch.loss_rows = keep if batch.loss_rows is None else batch.loss_rows & keep
    return _broadcast(adv, batch.response_mask)


def adv_pgrpo(batch, ctx):
    # Posterior-GRPO, arXiv 2508.05170: R = outcome + 1[correct] * process (mean step score), then GRPO
    r = ctx.outcomes + ctx.process_coef * shaping.posterior_gate(_mean_step_score(batch), ctx.outcomes)
    return _broadcast(adv_fns.grpo_advantages(r, batch.groups), batch.response_mask)


def adv_renorm(batch, ctx):
    # ReNorm, arXiv 2509.25598: step reward r_p + r_o - 1
    return _dense(batch, ctx, shaping.renorm(batch.step_scores, ctx.outcomes, batch.step_mask))


def adv_clip(batch, ctx):
    return _dense(batch, ctx, shaping.clip_process_rewards(batch.step_scores, ctx.cfg.clip_eta, batch.step_mask))


def adv_delta(batch, ctx):
    return _dense(batch, ctx, shaping.delta_process_rewards(batch.step_scores, batch.step_mask))


def adv_par(batch, ctx):
    # PAR: sigmoid of the reward centred on each of the group's other responses, then RLOO
    raw = ctx.outcomes + ctx.process_coef * _mean_step_score(batch)  # (B,)
    K = batch.group_size
    if K < 2:
        raise InputError("par needs the same number (>= 2) of responses per prompt", field="k")
    grid = raw.reshape(-1, K)  # (B/K, K) rows of one prompt are contiguous
    others = torch.stack([torch.cat([g[:i], g[i + 1:]]) for g in grid for i in range(K)])  # (B, K-1)
    return _broadcast(adv_fns.rloo_advantages(shaping.par_reward(raw, others), batch.groups), batch.response_mask)


def adv_trust(batch, ctx):
    # SophiaVL-R1: R = outcome + alpha_t * trust * process, then GRPO (alpha_t = annealed process_coef)
    proc = _mean_step_score(batch)
    gamma = shaping.trust_weight(proc, ctx.outcomes, batch.groups)
    return _broadcast(adv_fns.grpo_advantages(ctx.outcomes + ctx.process_coef * gamma * proc, batch.groups),
                      batch.response_mask)


# name -> (advantage function, needs a frozen reward model)
ADVANTAGES: dict[str, tuple[Callable[[RolloutBatch, MethodContext], torch.Tensor], bool]] = {
    "grpo": (adv_grpo, False),
    "rloo": (adv_rloo, False),
    "prime": (adv_prime, False),
    "pure": (adv_pure, True),
    "pure-sum": (adv_pure_sum, True),
    "pav": (adv_pav, True),
    "prof": (adv_prof, True),
    "pgrpo": (adv_pgrpo, True),
    "renorm": (adv_renorm, True),
    "clip": (adv_clip, True),
    "delta": (adv_delta, True),
    "par": (adv_par, True),
    "trust": (adv_trust, True),
}


def compute_advantages(method: str, batch: RolloutBatch, cfg: RLConfig, step: int = 0,
                       outcomes: torch.Tensor | None = None) -> torch.Tensor:
    """Token advantages (B,T) of `method` on a filled batch (step scores / implicit token rewards set);
    rows outside `batch.loss_rows` get 0. Whitens over the batch when cfg.whiten."""
    if method not in ADVANTAGES:
        raise InputError(f"unknown reward method {method!r}; expected one of {sorted(ADVANTAGES)}", field="reward")
    fn, needs_rm = ADVANTAGES[method]
    if needs_rm and batch.step_scores is None:
        raise ValueError(f"{method} needs batch.step_scores from a frozen reward model")
    coef = shaping.anneal(cfg.process_coef, step, max(1, cfg.steps), cfg.process_anneal)
    ctx = MethodContext(cfg=cfg, process_coef=coef, outcomes=batch.outcomes if outcomes is None else outcomes)
    adv = fn(batch, ctx).to(torch.float32)  # (B,T)
    rows = batch.loss_rows if batch.loss_rows is not None else torch.ones(batch.batch_size, dtype=torch.bool)
    mask = batch.response_mask & rows[:, None]  # (B,T)
    if (cfg.whiten or (method == "prime" and cfg.prime_whiten)) and bool(mask.any()):
        adv = adv_fns.masked_whiten(adv, mask)
    return torch.where(mask, adv, torch.zeros_like(adv))  # (B,T)


# ----------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------

def _log_signal(rec: dict, step: int, batch: RolloutBatch, rows: torch.Tensor, outcomes: torch.Tensor) -> None:
    """Log the share of groups with zero reward variance; warn (and log) when the step updates nothing."""
    rec["zero_var_group_share"] = adv_fns.zero_variance_group_share(outcomes, batch.groups)
    idle = adv_fns.no_update_reason(batch.advantages, batch.response_mask, rows, rec["zero_var_group_share"])
    if idle is not None:
        msg = f"step {step + 1} updates nothing through the policy gradient: {idle}"
        warnings.warn(msg)
        rec.setdefault("warnings", []).append(msg)


def _seed_for(*parts: int) -> int:
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


# options that may change between a run and its resumption
RESUMABLE_CHANGES = frozenset({"config", "out", "stop_after", "threads", "tensorboard", "save_policy", "device"})


def resume_ignores(cfg: RLConfig) -> frozenset:
    """Fields a resumed run may change (the reward model too when the method uses none)."""
    return RESUMABLE_CHANGES | ({"prm"} if not ADVANTAGES[cfg.reward][1] else set())


def _problems(path: str, split: str, n: int, max_ops: int = 0):
    from prmkit.gym.task import SPLITS, check_prompts, make_split
    from prmkit.resolve import read_problems

    if path:
        problems = read_problems(path)
        check_prompts(problems, path)
        return problems
    if max_ops:
        lo = min(SPLITS[split]["min_ops"], max_ops) if split in SPLITS else 1
        return make_split(split, n, min_ops=lo, max_ops=max_ops)
    return make_split(split, n)


class RLRun:
    """Holds models, optimizer, sampler and state of one run; `train()` runs the loop."""

    def __init__(self, cfg: RLConfig):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from prmkit.policy.hf import HFSampler

        if cfg.reward not in ADVANTAGES:
            raise InputError(f"unknown reward method {cfg.reward!r}; expected one of {sorted(ADVANTAGES)}",
                             field="reward")
        if cfg.k < 2:
            raise InputError(f"--k must be >= 2 (group baselines), got {cfg.k}", field="k")
        from prmkit.rl.filtering import check_filter_options
        from prmkit.rl.prime import check_prime_options

        check_filter_options(cfg)
        check_prime_options(cfg)
        if cfg.optimizer not in ("adam", "sgd"):
            raise InputError(f"--optimizer must be adam or sgd, got {cfg.optimizer!r}", field="optimizer")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if os.environ.get("PRMKIT_QUIET") == "1":
            hf_logging.disable_progress_bar()
        from prmkit.resolve import parse_rm_spec, policy_path, problems_are_gym

        self.cfg, self.out = cfg, Path(cfg.out)
        # every input is read and checked before the first model loads; gym defaults on gym problems only
        self.train_pool = _problems(cfg.problems, cfg.split, max(512, cfg.prompts_per_step * cfg.steps),
                                     cfg.gym_max_ops)
        if cfg.problems and not cfg.eval_problems_file and not problems_are_gym(self.train_pool):
            raise InputError("the training problems are not the gym's, so there is no held-out default: pass "
                             "--eval-problems-file (problems JSONL)", field="eval_problems_file")
        self.eval_set = _problems(cfg.eval_problems_file, cfg.eval_split, cfg.eval_problems)[:cfg.eval_problems]
        gym = problems_are_gym(self.train_pool) and problems_are_gym(self.eval_set)
        path = policy_path(cfg.model, "model", gym)
        rm_spec = parse_rm_spec(cfg.prm, "prm", gym, cfg.prm_token) if ADVANTAGES[cfg.reward][1] else None
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.prompt_format = cfg.resolve_format(path)  # checked before the weights load; saved with the policy
        self.prompt_format.check(self.tokenizer, where=path)
        note_unused_chat_template(self.prompt_format, self.tokenizer, "the policy")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = getattr(torch, cfg.dtype)
        self.device = resolve_device(cfg.device)
        self.policy = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device)
        self.policy.train()
        self.ref = None
        if cfg.kl_coef > 0 or cfg.reward == "prime":
            self.ref = copy.deepcopy(self.policy).eval()
            for p in self.ref.parameters():
                p.requires_grad_(False)
        opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
        one_d = [p for p in self.policy.parameters() if p.ndim <= 1]
        multi = [p for p in self.policy.parameters() if p.ndim > 1]
        self.optimizer = opt_cls([{"params": multi, "lr": cfg.lr},
                                  {"params": one_d, "lr": cfg.lr * cfg.lr_1d_mult}], lr=cfg.lr)
        warm = max(0, cfg.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda i: min(1.0, (i + 1) / warm) if warm else 1.0)
        self.sampler = HFSampler(self.policy, self.tokenizer, sep=cfg.sep)
        self.sampler.prompt_format = self.prompt_format
        self.implicit = None
        if cfg.reward == "prime":
            from prmkit.rl.prime import ImplicitPRM

            self.implicit = ImplicitPRM(self.policy, self.ref, beta=cfg.prime_beta, lr=cfg.prime_lr,
                                        grad_clip=cfg.prime_grad_clip, minibatch=cfg.minibatch,
                                        optimizer=cfg.prime_optimizer, weight_decay=cfg.prime_weight_decay,
                                        passes=cfg.prime_passes, granularity=cfg.prime_granularity,
                                        norm=cfg.prime_norm, loss_scale=cfg.prime_loss_scale)
        self.rm, self.rm_desc = (None, "")
        if rm_spec is not None:
            self.rm, self.rm_desc = rm_spec.load(device=self.device), rm_spec.describe()
        self.monitor = DriftMonitor()
        self.tb = None
        self.step, self.sampled_tokens, self.records = 0, 0, []
        self.filter_on = cfg.acc_filter == "on" or (cfg.acc_filter == "auto" and cfg.reward == "prime")

    # -------------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> None:
        """Policy, optimizer, scheduler, implicit PRM, monitor, counters and every RNG (tensors and plain data)."""
        from prmkit.rundir import rng_state, save_checkpoint

        state = {"step": self.step, "sampled_tokens": self.sampled_tokens,
                 "policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "monitor": self.monitor.state_dict(), "rng": rng_state(),
                 "implicit": self.implicit.state_dict() if self.implicit else None}
        save_checkpoint(state, self.out / "checkpoint" / "state.pt")

    def load_checkpoint(self) -> bool:
        from prmkit.rundir import load_checkpoint, set_rng_state

        path = self.out / "checkpoint" / "state.pt"
        if not path.exists():
            return False
        state = load_checkpoint(path, map_location=self.device)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.monitor.load_state_dict(state["monitor"])
        set_rng_state(state["rng"])
        if self.implicit and state["implicit"]:
            self.implicit.load_state_dict(state["implicit"])
        self.step, self.sampled_tokens = state["step"], state["sampled_tokens"]
        metrics = self.out / "metrics.jsonl"
        if metrics.exists():
            self.records = [r for r in map(json.loads, metrics.read_text().splitlines()) if r["step"] <= self.step]
        return True

    def _log(self, record: dict) -> None:
        from prmkit.schema import atomic_write_text

        self.records.append(record)
        atomic_write_text(self.out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.records))
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step" and math.isfinite(v):
                    self.tb.add_scalar(k, v, record["step"])

    # -------------------------------------------------------------------- rollouts

    def evaluate(self) -> float:
        """Held-out accuracy: one sample per problem at eval_temperature, fixed per-problem seeds."""
        from prmkit.policy.base import SamplingParams
        from prmkit.policy.sample import completion_to_trace

        self.policy.eval()
        params = SamplingParams(n=1, max_new_tokens=self.cfg.max_new_tokens,
                                temperature=self.cfg.eval_temperature, seed=self.cfg.eval_seed)
        seeds = [_seed_for(self.cfg.eval_seed, i) for i in range(len(self.eval_set))]
        groups = self.sampler.sample([self.sampler.render(p.prompt) for p in self.eval_set], params, seeds=seeds)
        self.policy.train()
        ok = [completion_to_trace(p, g[0], 0).outcome or 0.0 for p, g in zip(self.eval_set, groups)]
        return sum(ok) / max(1, len(ok))

    def sample_groups(self, problems: list, seeds: list[int]) -> list:
        """K training samples per problem, each problem's from its own seed -> [[Completion] * K]."""
        from prmkit.policy.base import SamplingParams

        params = SamplingParams(n=self.cfg.k, max_new_tokens=self.cfg.max_new_tokens, temperature=self.cfg.temperature)
        self.policy.eval()
        groups = self.sampler.sample([self.sampler.render(p.prompt) for p in problems], params, seeds=seeds)
        self.policy.train()
        return groups

    def rollout(self, step: int) -> RolloutBatch:
        """Sample K responses for this step's prompts and lay them out (outcomes, steps, step scores);
        with the accuracy filter in refill mode, prompts are drawn until enough pass (`self.refill_info`)."""
        from prmkit.policy.sample import completion_to_trace
        from prmkit.steps import step_end_positions_joint

        cfg = self.cfg
        self.refill_info = {}
        if self.filter_on and cfg.acc_filter_mode == "refill":
            from prmkit.rl.filtering import refill_rollout_groups

            problems, groups, self.refill_info = refill_rollout_groups(self, step, _seed_for)
        else:
            rng = random.Random(_seed_for(cfg.seed, step, 1))
            problems = rng.sample(self.train_pool, min(cfg.prompts_per_step, len(self.train_pool)))
            groups = self.sample_groups(problems, [_seed_for(cfg.seed, step, 2, i) for i in range(len(problems))])
        prompt_ids, resp, ends, outcomes, gids, prompts, steps, texts, finish = [], [], [], [], [], [], [], [], []
        for g, (p, comps) in enumerate(zip(problems, groups)):
            pid = self.sampler.encode_prompt(self.sampler.render(p.prompt))  # the policy's input; the RM renders its own
            for j, c in enumerate(comps):
                trace = completion_to_trace(p, c, j)
                try:
                    e = step_end_positions_joint(self.tokenizer, c.token_ids, c.steps, cfg.sep)
                    row_steps = list(c.steps)
                except InputError:
                    e, row_steps = [], []  # a tokenizer whose pieces do not decode alone: no step credit
                prompt_ids.append(pid)
                resp.append(c.token_ids)
                ends.append(e)
                outcomes.append(float(trace.outcome or 0.0))
                gids.append(g)
                prompts.append(p.prompt)
                steps.append(row_steps)
                texts.append(c.text)
                finish.append(c.finish_reason)
        batch = build_batch(prompt_ids, resp, ends, outcomes, gids, self.tokenizer.pad_token_id,
                            prompts=prompts, steps=steps, texts=texts, finish_reasons=finish)
        if self.rm is not None:
            rows = [b for b, ss in enumerate(steps) if ss]  # a response without steps gets no step score
            scores = self.rm.score([prompts[b] for b in rows], [steps[b] for b in rows]) if rows else []
            grid = torch.zeros(batch.step_mask.shape)
            for b, row in zip(rows, scores):
                if row:
                    grid[b, :len(row)] = torch.tensor(row, dtype=torch.float32)
            if cfg.process_noise_std > 0:
                gen = torch.Generator().manual_seed(_seed_for(cfg.seed, step, 3))
                grid = shaping.inject_reward_noise(grid, std=cfg.process_noise_std, generator=gen,
                                                   mask=batch.step_mask)
            batch.step_scores = torch.where(batch.step_mask, grid, torch.zeros_like(grid))
        return batch

    # -------------------------------------------------------------------- one step

    def train_step(self, step: int) -> dict:
        cfg = self.cfg
        t0 = time.perf_counter()
        batch = self.rollout(step)
        B = batch.batch_size
        n_tokens = int(batch.response_mask.sum())  # refill: every sampled token counts, discarded ones too
        self.sampled_tokens += self.refill_info.pop("refill/all_sampled_tokens", n_tokens)
        rec: dict = {"step": step + 1, "sampled_tokens": self.sampled_tokens,
                     "train/accuracy": float(batch.outcomes.mean())}
        rec.update(step_stats(batch.steps, batch.response_mask.sum(-1).tolist()))
        if "refill/warning" in self.refill_info:
            rec.setdefault("warnings", []).append(self.refill_info.pop("refill/warning"))
        rec.update(self.refill_info)
        outcomes = batch.outcomes
        if cfg.outcome_flip > 0:
            gen = torch.Generator().manual_seed(_seed_for(cfg.seed, step, 4))
            outcomes = shaping.inject_reward_noise(batch.outcomes, flip_prob=cfg.outcome_flip, generator=gen)
        batch.loss_rows = torch.ones(B, dtype=torch.bool)
        if self.filter_on:
            from prmkit.rl.filtering import accuracy_filter

            batch.loss_rows = accuracy_filter(outcomes, batch.groups, cfg.acc_lower, cfg.acc_upper)
        with torch.no_grad():
            batch.old_logprobs = response_logprobs(self.policy, batch)
            if self.ref is not None:
                batch.ref_logprobs = response_logprobs(self.ref, batch)
        if self.implicit is not None:
            rows = torch.nonzero(batch.loss_rows).flatten()
            labelled = copy.copy(batch)
            labelled.outcomes = outcomes
            rec.update(self.implicit.update(labelled, rows))  # PRIME "update before": then read rewards
            batch.token_rewards = self.implicit.token_rewards(batch, batch.loss_rows)
            rec["process_reward"] = float(masked_mean(batch.token_rewards.sum(-1), batch.loss_rows)) \
                if bool(batch.loss_rows.any()) else 0.0
        if batch.step_scores is not None:
            rec["process_reward"] = float(masked_mean(batch.step_scores, batch.step_mask))
        batch.advantages = compute_advantages(cfg.reward, batch, cfg, step, outcomes)
        batch.validate()
        if self.implicit is not None:
            from prmkit.rl.prime import process_term_stats

            coef = shaping.anneal(cfg.process_coef, step, max(1, cfg.steps), cfg.process_anneal)
            rec.update(process_term_stats(batch, outcomes, coef, cfg.outcome_coef, cfg.prime_loo))
        rows = torch.nonzero(batch.loss_rows).flatten()
        rec["kept_rows"] = int(len(rows))
        _log_signal(rec, step, batch, rows, outcomes)
        stats = {"loss": [], "clip_frac": [], "approx_kl": [], "kl_ref": []}
        if len(rows):
            gen = torch.Generator().manual_seed(_seed_for(cfg.seed, step, 5))
            for epoch in range(cfg.ppo_epochs):
                order = rows[torch.randperm(len(rows), generator=gen)]
                for start in range(0, len(order), cfg.minibatch):
                    mb = order[start:start + cfg.minibatch]
                    mask = batch.response_mask[mb]
                    lp = response_logprobs(self.policy, batch, mb)  # (M,T)
                    loss, st = ppo_clip_loss(lp, batch.old_logprobs[mb], batch.advantages[mb], mask, cfg.clip_eps)
                    if cfg.kl_coef > 0:
                        kl = masked_mean(kl_k3(lp, batch.ref_logprobs[mb]), mask)
                        loss = loss + cfg.kl_coef * kl
                        stats["kl_ref"].append(float(kl))
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.grad_clip)
                    self.optimizer.step()
                    self.scheduler.step()
                    stats["loss"].append(float(loss.detach()))
                    stats["clip_frac"].append(float(st["clip_frac"]))
                    stats["approx_kl"].append(float(st["approx_kl"]))
        for k, v in stats.items():
            if v:
                rec[k] = sum(v) / len(v)
        rec["adv_abs_mean"] = float(masked_mean(batch.advantages.abs(), batch.response_mask))
        rec["time/step_s"] = round(time.perf_counter() - t0, 3)
        return rec

    def train(self) -> list[dict]:
        from prmkit.progress import progress
        from prmkit.rundir import check_resume, record_config

        cfg = self.cfg
        check_resume(self.out, cfg, has_work=(self.out / "checkpoint" / "state.pt").exists(),
                     ignore=resume_ignores(cfg))
        self.out.mkdir(parents=True, exist_ok=True)
        record_config(self.out, cfg)
        self.prompt_format.save(self.out)
        resumed = self.load_checkpoint()
        self.tb = None
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out / "tb"), purge_step=self.step + 1 if resumed else None)
            except ImportError:  # tensorboard not installed: JSONL only
                self.tb = None
        if not resumed:
            self._log({"step": 0, "sampled_tokens": 0, "eval/accuracy": self.evaluate(),
                       "reward_model": self.rm_desc})
        bar = progress(total=cfg.steps, desc=f"rl {cfg.reward}")
        bar.update(self.step)
        done_now = 0
        while self.step < cfg.steps and not (cfg.stop_after and done_now >= cfg.stop_after):
            rec = self.train_step(self.step)
            self.step += 1
            done_now += 1
            if self.step == cfg.steps or (cfg.eval_every and self.step % cfg.eval_every == 0):
                rec["eval/accuracy"] = self.evaluate()
            for w in self.monitor.update(rec):
                warnings.warn(f"reward-hacking monitor at step {self.step}: {w}")
                rec.setdefault("warnings", []).append(w)
            self._log(rec)
            if cfg.checkpoint_every and (self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps):
                self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(acc=f"{rec['train/accuracy']:.2f}", ev=rec.get("eval/accuracy", ""))
        bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.step == cfg.steps and cfg.save_policy:
            self.save_policy()
        return self.records

    def save_policy(self) -> Path:
        import shutil

        final = self.out / "policy"
        tmp = self.out / "policy.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.policy.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        self.prompt_format.save(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return final


def run(cfg: RLConfig) -> list[dict]:
    records = RLRun(cfg).train()
    evals = [(r["step"], r["eval/accuracy"]) for r in records if "eval/accuracy" in r]
    if evals:
        print(f"{cfg.reward}: held-out accuracy {evals[0][1]:.3f} (step {evals[0][0]}) -> "
              f"{evals[-1][1]:.3f} (step {evals[-1][0]}); metrics in {Path(cfg.out) / 'metrics.jsonl'}")
    return records


def summarize(records: list[dict]) -> dict:
    """Headline numbers of a run's metrics: start/final held-out accuracy, steps, sampled tokens."""
    evals = [r for r in records if "eval/accuracy" in r]
    return {"start_accuracy": evals[0]["eval/accuracy"] if evals else None,
            "final_accuracy": evals[-1]["eval/accuracy"] if evals else None,
            "steps": records[-1]["step"] if records else 0,
            "sampled_tokens": records[-1].get("sampled_tokens", 0) if records else 0}


__all__ = ["RLConfig", "RLRun", "ADVANTAGES", "compute_advantages", "pure_step_rewards", "run", "summarize",
           "load_reward_model"]
