"""prmkit's process rewards inside verl (0.9.1): a reward manager for verl's reward loop.

verl 0.9.1 builds rewards in `verl.experimental.reward_loop`: a reward manager's async
`run_single(data)` scores one sample, then `RewardLoopManager.compute_rm_score` hands every
sample's result to the manager class's `assemble_rm_scores(data, scores)`, which returns the
(B, T) `rm_scores` tensor the trainer uses as `token_level_scores`. This manager:

- `run_single`: decodes the response, splits it into steps (the reward model's separator or a
  `prmkit.steps.split_solution` mode), finds each step's last token, scores the steps with any prmkit
  reward model (a local dir, hub id, or `http(s)://` of `prmkit serve`), and grades the outcome with
  verl's `compute_score`;
- `assemble_rm_scores`: applies the credit rule over the whole batch (groups = verl's `uid`) with
  `prmkit.rl.token_rewards.token_level_rewards`, so each step's reward sits on its end token and the
  outcome on the last token; verl's own estimator (GAE, REINFORCE++, RLOO, GRPO...) does the rest.

`__call__(data, return_dict)` gives the same tensor in one call (verl's older batch manager API).
verl is imported by nothing here: prmkit imports without it; the class follows verl's interface
(verl's loader instantiates whatever `reward.reward_manager.module.path/name` names). See docs/verl.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Sequence

import torch

from prmkit.errors import InputError
from prmkit.rl.token_rewards import CREDIT_RULES, token_level_rewards


@dataclass
class VerlRewardSettings:
    """What the manager reads from verl's `reward.reward_kwargs` (e.g. `+reward.reward_kwargs.rm=...`)."""

    rm: str = ""
    """reward model: a prmkit PRM dir, hub id, or http(s)://host:port of `prmkit serve` (required)"""
    credit: str = "pure"
    """credit rule: outcome+process, pure (PURE min-form), pure-sum, pav, prof"""
    sep: str = "\n"
    """step separator of the responses (used when step_split is empty)"""
    step_split: str = ""
    """a prmkit.steps.split_solution mode (double_newline, newline, regex:<p>, step_markers); empty: sep"""
    process_coef: float = 1.0
    outcome_coef: float = 1.0
    temperature: float = 0.1
    """PURE min-form softmax temperature"""
    prof_keep: int = 4
    """PROF: responses kept per prompt"""
    prompt_key: str = ""
    """extra_info key holding the question text the PRM sees; empty: the decoded prompt"""
    device: str = ""
    token: str = ""
    """bearer token of a served reward model (else $PRMKIT_RM_TOKEN)"""

    def check(self) -> "VerlRewardSettings":
        if not self.rm:
            raise InputError("prmkit's verl reward manager needs a reward model", field="reward.reward_kwargs.rm")
        if self.credit not in CREDIT_RULES:
            raise InputError(f"unknown credit rule {self.credit!r}; expected one of {list(CREDIT_RULES)}",
                             field="reward.reward_kwargs.credit")
        if self.step_split:
            from prmkit.steps import check_split_mode

            check_split_mode(self.step_split)
        return self


def settings_from(values: dict) -> VerlRewardSettings:
    """Settings from a mapping; an unknown key is an error naming it."""
    known = {f.name for f in fields(VerlRewardSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown keys {unknown}; expected some of {sorted(known)}", field="reward.reward_kwargs")
    return VerlRewardSettings(**dict(values)).check()


def response_steps(tokenizer: Any, response_ids: Sequence[int], settings: VerlRewardSettings
                   ) -> tuple[list[str], list[int]]:
    """(steps, end token index of each step) of one response's real token ids. A trailing EOS is not
    part of any step; its text is left out before splitting."""
    from prmkit.steps import split_solution, split_steps, step_end_positions_joint

    ids = list(response_ids)
    eos = getattr(tokenizer, "eos_token_id", None)
    while ids and eos is not None and ids[-1] == eos:
        ids.pop()
    text = "".join(tokenizer.decode([t]) for t in ids)
    steps = split_solution(text, settings.step_split) if settings.step_split else split_steps(text, settings.sep)
    try:
        ends = step_end_positions_joint(tokenizer, ids, steps, settings.sep)
    except InputError:
        return [], []  # pieces that do not decode alone: no step credit for this response (as prmkit rl)
    return steps, ends


def _row(data: Any, i: int) -> tuple[list[int], list[int], int]:
    """(real prompt ids, real response ids, prompt block width) of row i of a verl DataProto."""
    prompts, responses = data.batch["prompts"], data.batch["responses"]
    P = prompts.shape[-1]
    att = data.batch["attention_mask"][i]
    n_prompt, n_resp = int(att[:P].sum()), int(att[P:].sum())
    return prompts[i, P - n_prompt:].tolist(), responses[i, :n_resp].tolist(), P


def _non_tensor(data: Any, key: str, i: int, default: Any = None) -> Any:
    col = data.non_tensor_batch.get(key)
    return default if col is None else col[i]


class PrmkitRewardManager:
    """verl reward manager (verl's `RewardManagerBase` interface) giving prmkit step-end rewards."""

    def __init__(self, config: Any = None, tokenizer: Any = None, compute_score: Callable | None = None,
                 reward_router_address: str | None = None, reward_model_tokenizer: Any = None,
                 rm_model: Any = None, **settings: Any):
        values = dict(_reward_kwargs(config)) if config is not None else {}
        values.update(settings)
        self.settings = settings_from(values)
        if config is not None:
            check_reward_path(config)
        self.config, self.tokenizer = config, tokenizer
        self.compute_score = compute_score or verl_default_score
        self.rm = rm_model if rm_model is not None else _load_rm(self.settings)

    # ---------------------------------------------------------------- one sample (verl reward loop)

    def score_row(self, data: Any, i: int) -> dict:
        """Outcome, step ends and step scores of row i."""
        prompt_ids, resp_ids, _ = _row(data, i)
        steps, ends = response_steps(self.tokenizer, resp_ids, self.settings)
        extra = _non_tensor(data, "extra_info", i, {}) or {}
        if self.settings.prompt_key:
            if self.settings.prompt_key not in extra:
                raise InputError(f"row {i} has no extra_info[{self.settings.prompt_key!r}]",
                                 field="reward.reward_kwargs.prompt_key")
            prompt = str(extra[self.settings.prompt_key])
        else:
            prompt = self.tokenizer.decode(prompt_ids, skip_special_tokens=True)
        scores = [float(s) for s in self.rm.score([prompt], [steps])[0]] if steps else []
        response_str = self.tokenizer.decode(resp_ids, skip_special_tokens=True)
        ground_truth = (_non_tensor(data, "reward_model", i, {}) or {}).get("ground_truth")
        result = self.compute_score(data_source=_non_tensor(data, "data_source", i), solution_str=response_str,
                                    ground_truth=ground_truth, extra_info=extra)
        outcome = float(result["score"] if isinstance(result, dict) else result)
        return {"outcome": outcome, "step_ends": ends, "step_scores": scores, "length": len(resp_ids),
                "settings": asdict(self.settings)}

    async def run_single(self, data: Any) -> dict:
        row = self.score_row(data, len(data) - 1)  # multi-sequence outputs: the last one, as verl's managers
        info = {"outcome": row["outcome"], "num_steps": len(row["step_scores"]),
                "mean_step_score": sum(row["step_scores"]) / max(1, len(row["step_scores"]))}
        return {"reward_score": row, "reward_extra_info": info}

    # ---------------------------------------------------------------- the batch

    @classmethod
    def assemble_rm_scores(cls, data: Any, scores: list[dict]) -> torch.Tensor:
        """(B, T) rm_scores from every row's `run_single` result: the credit rule over the batch.
        verl calls this on the class in its driver, where no manager was built, so each row carries
        the settings it was scored under."""
        if not scores:
            return torch.zeros_like(data.batch["responses"], dtype=torch.float32)
        settings = VerlRewardSettings(**scores[0]["settings"])
        rewards, _ = batch_rewards(scores, _groups(data), data.batch["responses"].shape[-1], settings)
        return rewards

    def __call__(self, data: Any, return_dict: bool = False):
        rows = [self.score_row(data, i) for i in range(len(data))]
        rewards, keep = batch_rewards(rows, _groups(data), data.batch["responses"].shape[-1], self.settings)
        if not return_dict:
            return rewards
        info = {"outcome": [r["outcome"] for r in rows], "num_steps": [len(r["step_scores"]) for r in rows],
                "prmkit_keep": keep.tolist()}
        return {"reward_tensor": rewards, "reward_extra_info": info}


def batch_rewards(rows: list[dict], groups: torch.Tensor, num_tokens: int, settings: VerlRewardSettings
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rewards (B, T) and kept rows (B,) from per-row {outcome, step_ends, step_scores, length}."""
    B, S = len(rows), max([1] + [len(r["step_scores"]) for r in rows])
    step_scores, step_end = torch.zeros(B, S), torch.zeros(B, S, dtype=torch.long)
    step_mask = torch.zeros(B, S, dtype=torch.bool)
    for b, r in enumerate(rows):
        if len(r["step_ends"]) != len(r["step_scores"]):
            raise InputError(f"{len(r['step_scores'])} step scores for {len(r['step_ends'])} steps",
                             field=f"rows[{b}].step_scores")
        k = len(r["step_scores"])
        step_scores[b, :k] = torch.tensor(r["step_scores"], dtype=torch.float32)
        step_end[b, :k] = torch.tensor(r["step_ends"], dtype=torch.long)
        step_mask[b, :k] = True
    s = settings
    return token_level_rewards(s.credit, step_scores, step_end, step_mask,
                               torch.tensor([r["outcome"] for r in rows], dtype=torch.float32), groups,
                               torch.tensor([r["length"] for r in rows]), num_tokens,
                               process_coef=s.process_coef, outcome_coef=s.outcome_coef,
                               temperature=s.temperature, prof_keep=s.prof_keep)


def _groups(data: Any) -> torch.Tensor:
    """Group index per row from verl's `uid` (responses of one prompt share it); each row alone without it."""
    uids = data.non_tensor_batch.get("uid")
    if uids is None:
        return torch.arange(len(data))
    order: dict = {}
    return torch.tensor([order.setdefault(u, len(order)) for u in uids.tolist()], dtype=torch.long)


def check_reward_path(config: Any) -> None:
    """verl 0.9.1 calls `assemble_rm_scores` only on its batch reward path; its streaming path (the
    agent loop, taken when verl's reward model is off or has its own resource pool) writes one scalar
    on the last token, which would drop every step reward. Refuse that configuration by name."""
    reward = config.get("reward") or {}
    rm_cfg = reward.get("reward_model") or {}
    custom = reward.get("custom_reward_function") or {}
    problems = []
    if not rm_cfg.get("enable") or rm_cfg.get("enable_resource_pool"):
        problems.append("reward.reward_model.enable=True and reward.reward_model.enable_resource_pool=False "
                        "(verl then assembles the batch through assemble_rm_scores instead of streaming "
                        "one scalar per response)")
    if not custom.get("path"):
        problems.append("reward.custom_reward_function.path (the outcome grader; without it verl's worker "
                        "bypasses the reward manager)")
    if problems:
        raise InputError("prmkit's step-end rewards need verl's batch reward path; set " + "; ".join(problems),
                         field="reward")


def _reward_kwargs(config: Any) -> dict:
    reward = config.get("reward") if hasattr(config, "get") else None
    kwargs = reward.get("reward_kwargs") if reward is not None and hasattr(reward, "get") else None
    return dict(kwargs) if kwargs else {}


def _load_rm(settings: VerlRewardSettings):
    from prmkit.resolve import parse_rm_spec

    return parse_rm_spec(settings.rm, "reward.reward_kwargs.rm", gym_data=False, token=settings.token
                         ).load(device=settings.device)


def verl_default_score(data_source=None, solution_str="", ground_truth=None, extra_info=None, **kwargs):
    """verl's own rule-based outcome grader (by data_source), for `reward.custom_reward_function`."""
    from verl.utils.reward_score import default_compute_score  # only where no compute_score is given

    return default_compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)


def describe(settings: VerlRewardSettings) -> dict:
    return asdict(settings)
