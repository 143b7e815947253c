"""`prmkit rl`'s advantage methods (`--reward`): a registry of pure recipes with explicit arguments.

A method is one function decorated with `@advantage_method(name, needs=...)`. Its parameters say what
it reads, by name:

* the step's tensors: `outcomes` (B,) the rewarded outcomes (noisy under --outcome-flip), `groups` (B,),
  `response_mask` (B,T), `step_scores` (B,S) a frozen reward model's scores, `step_mask` (B,S),
  `step_end` (B,S), `step_of_token` (B,T), `token_rewards` (B,T) the online implicit PRM's rewards,
  `group_size` (K, 0 when groups differ in size);
* `process_coef`: the process weight of this step (--process-coef under --process-anneal);
* any other name is the `prmkit rl` option of that name (e.g. `pav_alpha`, `outcome_coef`).

`needs` names what the run must provide: "rm_scores" (a frozen reward model scores every step) and
"implicit_prm" (PRIME's online implicit PRM gives token rewards; the run keeps a reference model).
A recipe returns the token advantages (B,T), or a `MethodResult` that also carries the shaped step /
token rewards it logged and the rows it keeps. `compute_advantages` zeroes rows outside the loss and
whitens. The tensor math lives in `advantages.py` and `shaping.py`; recipes only combine it.
Shapes: B responses, T response tokens, S steps.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch

from prmkit.errors import InputError
from prmkit.rl import advantages as adv_fns
from prmkit.rl import shaping
from prmkit.rl.losses import masked_mean
from prmkit.rl.rollout import RolloutBatch

NEEDS = {"rm_scores": "step scores of a frozen reward model (--prm)",
         "implicit_prm": "token rewards of PRIME's online implicit PRM (a reference model is kept)"}
BATCH_INPUTS = ("outcomes", "groups", "response_mask", "step_scores", "step_mask", "step_end", "step_of_token",
                "token_rewards", "group_size")


@dataclass
class MethodResult:
    """What a recipe returns: token advantages and, for the logs and the loss, what it shaped or kept."""

    advantages: torch.Tensor  # (B,T)
    step_rewards: torch.Tensor | None = None  # (B,S) shaped process reward per step
    token_rewards: torch.Tensor | None = None  # (B,T) process reward per token
    keep: torch.Tensor | None = None  # (B,) bool: rows the method keeps in the loss (PROF)


@dataclass(frozen=True)
class AdvantageMethod:
    name: str
    fn: Callable[..., torch.Tensor | MethodResult]
    needs: tuple[str, ...]
    params: tuple[str, ...]
    whiten_option: str = ""
    """an option that, when true, whitens this method's advantages over the batch (PRIME: prime_whiten)"""

    @property
    def needs_rm(self) -> bool:
        return "rm_scores" in self.needs

    @property
    def auto_filter(self) -> bool:
        """--acc-filter auto turns the accuracy filter on for this method (PRIME's recipe)."""
        return "implicit_prm" in self.needs


ADVANTAGES: dict[str, AdvantageMethod] = {}


def advantage_method(name: str, needs: tuple[str, ...] = (), whiten_option: str = ""):
    """Register a recipe under `name`; its parameter names are its inputs (see the module docstring)."""
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError(f"advantage method {name!r}: unknown needs {unknown}; expected some of {sorted(NEEDS)}")

    def wrap(fn):
        if name in ADVANTAGES:
            raise ValueError(f"advantage method {name!r} registered twice")
        params = tuple(inspect.signature(fn).parameters)
        ADVANTAGES[name] = AdvantageMethod(name, fn, tuple(needs), params, whiten_option)
        return fn
    return wrap


def get_method(name: str) -> AdvantageMethod:
    if name not in ADVANTAGES:
        raise InputError(f"unknown reward method {name!r}; expected one of {sorted(ADVANTAGES)}", field="reward")
    return ADVANTAGES[name]


def _argument(name: str, batch: RolloutBatch, outcomes: torch.Tensor, process_coef: float, options: Any) -> Any:
    if name == "outcomes":
        return outcomes
    if name == "process_coef":
        return process_coef
    if name in BATCH_INPUTS:
        return getattr(batch, name)
    if not hasattr(options, name):
        raise InputError(f"an advantage method reads option {name!r}, which the settings lack", field=name)
    return getattr(options, name)


def compute_advantages(method: str, batch: RolloutBatch, cfg: Any, step: int = 0,
                       outcomes: torch.Tensor | None = None) -> torch.Tensor:
    """Token advantages (B,T) of `method` on a filled batch (step scores / implicit token rewards set);
    rows outside `batch.loss_rows` get 0. `cfg` gives the options the recipe names, the process weight and
    its schedule; whitens over the batch when cfg.whiten (or the method's whiten option)."""
    m = get_method(method)
    if m.needs_rm and batch.step_scores is None:
        raise ValueError(f"{method} needs batch.step_scores from a frozen reward model")
    if "implicit_prm" in m.needs and batch.token_rewards is None:
        raise ValueError(f"{method} needs batch.token_rewards from the implicit PRM")
    coef = shaping.anneal(cfg.process_coef, step, max(1, cfg.steps), cfg.process_anneal)
    outcomes = batch.outcomes if outcomes is None else outcomes
    out = m.fn(**{p: _argument(p, batch, outcomes, coef, cfg) for p in m.params})
    res = out if isinstance(out, MethodResult) else MethodResult(out)
    if res.step_rewards is not None:
        batch.step_rewards = res.step_rewards
    if res.token_rewards is not None:
        batch.token_rewards = res.token_rewards
    if res.keep is not None:
        batch.loss_rows = res.keep if batch.loss_rows is None else batch.loss_rows & res.keep
    adv = res.advantages.to(torch.float32)  # (B,T)
    rows = batch.loss_rows if batch.loss_rows is not None else torch.ones(batch.batch_size, dtype=torch.bool)
    mask = batch.response_mask & rows[:, None]  # (B,T)
    whiten = cfg.whiten or bool(m.whiten_option and getattr(cfg, m.whiten_option))
    if whiten and bool(mask.any()):
        adv = adv_fns.masked_whiten(adv, mask)
    return torch.where(mask, adv, torch.zeros_like(adv))  # (B,T)


# ----------------------------------------------------------------------------------------------
# shared pieces of the recipes
# ----------------------------------------------------------------------------------------------

def _broadcast(per_row: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B,T) on real tokens."""
    return per_row[:, None].to(torch.float32) * mask.to(torch.float32)  # (B,T)


def per_step_to_tokens(values: torch.Tensor, step_mask: torch.Tensor, step_of_token: torch.Tensor,
                       response_mask: torch.Tensor, outside: torch.Tensor | None = None) -> torch.Tensor:
    """(B,S) per-step values -> (B,T): each token gets its step's value (`outside` (B,) or 0 after the last step)."""
    B, S = values.shape
    fill = torch.zeros(B, 1) if outside is None else outside[:, None].to(values.dtype)  # (B,1)
    padded = torch.cat([torch.where(step_mask, values, torch.zeros_like(values)), fill], dim=1)  # (B,S+1)
    out = padded.gather(1, step_of_token.clamp(max=S))  # (B,T)
    return torch.where(response_mask, out, torch.zeros_like(out))  # (B,T)


def _dense(step_rewards, outcomes, groups, response_mask, step_mask, step_end, process_coef, outcome_coef):
    """Outcome RLOO + returns of step rewards placed on step-end tokens, with PRIME's leave-one-out
    per-token baseline (PRIME, arXiv 2502.01456 applied to any per-step reward)."""
    T = response_mask.shape[1]
    tok = adv_fns.step_to_token_rewards(step_rewards, step_end, step_mask, T)  # (B,T)
    adv = adv_fns.prime_advantages(outcomes, tok, response_mask, groups, process_coef=process_coef,
                                   outcome_coef=outcome_coef)  # (B,T)
    return MethodResult(adv, step_rewards=torch.where(step_mask, step_rewards, torch.zeros_like(step_rewards)),
                        token_rewards=tok)


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


def _pure(credit, outcomes, groups, response_mask, step_scores, step_mask, step_end, step_of_token,
          process_coef, vr_coef, pure_temperature):
    # PURE, arXiv 2504.15275: token baseline on the (transformed) step rewards, verifiable reward (solved - 1,
    # RLOO-baselined) on the last token, advantages = reverse cumsum (gamma 1)
    mask, T = response_mask, response_mask.shape[1]
    lengths = mask.sum(-1)  # (B,)
    vr = adv_fns.rloo_advantages(outcomes - 1.0, groups) * vr_coef  # (B,)
    last = (lengths - 1).clamp(min=0)  # (B,)
    vr_tok = torch.zeros(mask.shape).scatter_(1, last[:, None], vr[:, None])  # (B,T)
    if credit == "strict":
        r = 2.0 * step_scores - 1.0  # (B,S)
        values = adv_fns.strict_min_returns(r, step_mask)  # (B,S) G_k = min of future steps
        first = torch.where(step_mask[:, 0], values[:, 0], torch.zeros_like(values[:, 0]))  # (B,)
        base = first - adv_fns.rloo_advantages(first, groups)  # (B,) leave-one-out mean of G_0
        process = per_step_to_tokens(values - base[:, None], step_mask, step_of_token, mask) * process_coef  # (B,T)
        return MethodResult(process + adv_fns.token_returns(vr_tok, mask), step_rewards=values)  # (B,T)
    transformed = pure_step_rewards(step_scores, step_mask, credit, pure_temperature)  # (B,S)
    prev_end = torch.cat([torch.full_like(step_end[:, :1], -1), step_end[:, :-1]], dim=1)  # (B,S)
    step_tokens = torch.where(step_mask, step_end - prev_end, torch.zeros_like(prev_end))  # (B,S)
    baselined = adv_fns.pure_token_baseline(transformed, step_mask, step_tokens, lengths, groups)
    tok = adv_fns.step_to_token_rewards(baselined, step_end, step_mask, T) * process_coef
    return MethodResult(adv_fns.token_returns(tok + vr_tok, mask), step_rewards=transformed, token_rewards=tok)


# ----------------------------------------------------------------------------------------------
# the methods
# ----------------------------------------------------------------------------------------------

@advantage_method("grpo")
def grpo(outcomes, groups, response_mask):
    # GRPO, arXiv 2402.03300: (R - group mean) / group std on every token
    return _broadcast(adv_fns.grpo_advantages(outcomes, groups), response_mask)


@advantage_method("rloo")
def rloo(outcomes, groups, response_mask):
    # RLOO, arXiv 2402.14740: R minus the mean of the group's other responses
    return _broadcast(adv_fns.rloo_advantages(outcomes, groups), response_mask)


@advantage_method("grpo_nostd")
def grpo_nostd(outcomes, groups, response_mask):
    # Dr. GRPO's advantage, arXiv 2503.20783: R minus the group mean, not divided by the group's std
    return _broadcast(adv_fns.grpo_advantages(outcomes, groups, normalize_std=False), response_mask)


@advantage_method("reinforce_pp_baseline")
def reinforce_pp_baseline(outcomes, groups, response_mask):
    # REINFORCE++-baseline, arXiv 2501.03262: R minus the group mean, then whitened over every token of the batch
    centered = _broadcast(adv_fns.grpo_advantages(outcomes, groups, normalize_std=False), response_mask)
    return adv_fns.masked_whiten(centered, response_mask)


@advantage_method("prime", needs=("implicit_prm",), whiten_option="prime_whiten")
def prime(outcomes, groups, response_mask, token_rewards, process_coef, outcome_coef, prime_loo):
    # PRIME, arXiv 2502.01456: token_rewards = beta * log(pi_phi/pi_ref), set by the implicit PRM
    return adv_fns.prime_advantages(outcomes, token_rewards, response_mask, groups, process_coef=process_coef,
                                    outcome_coef=outcome_coef, process_loo=prime_loo)


@advantage_method("pure", needs=("rm_scores",))
def pure(outcomes, groups, response_mask, step_scores, step_mask, step_end, step_of_token, process_coef,
         pure_credit, vr_coef, pure_temperature):
    return _pure(pure_credit, outcomes, groups, response_mask, step_scores, step_mask, step_end, step_of_token,
                 process_coef, vr_coef, pure_temperature)


@advantage_method("pure-sum", needs=("rm_scores",))
def pure_sum(outcomes, groups, response_mask, step_scores, step_mask, step_end, step_of_token, process_coef,
             vr_coef, pure_temperature):
    return _pure("sum", outcomes, groups, response_mask, step_scores, step_mask, step_end, step_of_token,
                 process_coef, vr_coef, pure_temperature)


@advantage_method("pav", needs=("rm_scores",))
def pav(outcomes, groups, response_mask, step_scores, step_mask, step_of_token, process_coef, outcome_coef,
        pav_alpha):
    # PAV, arXiv 2410.08146: each step's tokens get Q^pi (outcome RLOO advantage) + alpha * A^mu, A^mu the
    # frozen PRM's progress (`shaping.pav_progress`)
    progress = shaping.pav_progress(step_scores, step_mask, groups)  # (B,S)
    outcome_adv = adv_fns.rloo_advantages(outcomes, groups) * outcome_coef  # (B,)
    effective = shaping.pav_effective_reward(outcome_adv[:, None].expand_as(step_scores), progress,
                                             pav_alpha * process_coef, step_mask)  # (B,S)
    adv = per_step_to_tokens(effective, step_mask, step_of_token, response_mask, outside=outcome_adv)  # (B,T)
    return MethodResult(adv, step_rewards=progress)


@advantage_method("prof", needs=("rm_scores",))
def prof(outcomes, groups, response_mask, step_scores, step_mask, prof_keep):
    # PROF, arXiv 2509.03403: keep a balanced, process-consistent subset per prompt, GRPO over the kept rows only
    keep = shaping.prof_filter(outcomes, masked_mean(step_scores, step_mask, dim=-1), groups, prof_keep)  # (B,)
    adv = torch.zeros_like(outcomes)  # (B,)
    rows = torch.nonzero(keep).flatten()
    adv[rows] = adv_fns.grpo_advantages(outcomes[rows], groups[rows])
    return MethodResult(_broadcast(adv, response_mask), keep=keep)


@advantage_method("pgrpo", needs=("rm_scores",))
def pgrpo(outcomes, groups, response_mask, step_scores, step_mask, process_coef):
    # Posterior-GRPO, arXiv 2508.05170: R = outcome + 1[correct] * process (mean step score), then GRPO
    r = outcomes + process_coef * shaping.posterior_gate(masked_mean(step_scores, step_mask, dim=-1), outcomes)
    return _broadcast(adv_fns.grpo_advantages(r, groups), response_mask)


@advantage_method("renorm", needs=("rm_scores",))
def renorm(outcomes, groups, response_mask, step_scores, step_mask, step_end, process_coef, outcome_coef):
    # ReNorm, arXiv 2509.25598: step reward r_p + r_o - 1
    return _dense(shaping.renorm(step_scores, outcomes, step_mask), outcomes, groups, response_mask, step_mask,
                  step_end, process_coef, outcome_coef)


@advantage_method("clip", needs=("rm_scores",))
def clip(outcomes, groups, response_mask, step_scores, step_mask, step_end, process_coef, outcome_coef, clip_eta):
    # Clip mechanism (Gao et al. 2024, arXiv 2410.15115): min(r - eta, 0)
    return _dense(shaping.clip_process_rewards(step_scores, clip_eta, step_mask), outcomes, groups, response_mask,
                  step_mask, step_end, process_coef, outcome_coef)


@advantage_method("delta", needs=("rm_scores",))
def delta(outcomes, groups, response_mask, step_scores, step_mask, step_end, process_coef, outcome_coef):
    # Delta mechanism (Gao et al. 2024, arXiv 2410.15115): r_k - r_{k+1}
    return _dense(shaping.delta_process_rewards(step_scores, step_mask), outcomes, groups, response_mask,
                  step_mask, step_end, process_coef, outcome_coef)


@advantage_method("par", needs=("rm_scores",))
def par(outcomes, groups, response_mask, step_scores, step_mask, group_size, process_coef):
    # PAR: sigmoid of the reward centred on each of the group's other responses, then RLOO
    raw = outcomes + process_coef * masked_mean(step_scores, step_mask, dim=-1)  # (B,)
    K = group_size
    if K < 2:
        raise InputError("par needs the same number (>= 2) of responses per prompt", field="k")
    grid = raw.reshape(-1, K)  # (B/K, K) rows of one prompt are contiguous
    others = torch.stack([torch.cat([g[:i], g[i + 1:]]) for g in grid for i in range(K)])  # (B, K-1)
    return _broadcast(adv_fns.rloo_advantages(shaping.par_reward(raw, others), groups), response_mask)


@advantage_method("trust", needs=("rm_scores",))
def trust(outcomes, groups, response_mask, step_scores, step_mask, process_coef):
    # SophiaVL-R1: R = outcome + alpha_t * trust * process, then GRPO (alpha_t = annealed process_coef)
    proc = masked_mean(step_scores, step_mask, dim=-1)  # (B,)
    gamma = shaping.trust_weight(proc, outcomes, groups)
    return _broadcast(adv_fns.grpo_advantages(outcomes + process_coef * gamma * proc, groups), response_mask)


__all__ = ["ADVANTAGES", "AdvantageMethod", "MethodResult", "NEEDS", "advantage_method", "compute_advantages",
           "get_method", "per_step_to_tokens", "pure_step_rewards"]
