"""The rollout batch of one RL step: sampled responses laid out as tensors, with a shape on every field.

Layout: each row is one response. Its prompt is left-padded to P tokens and its response is
right-padded to T tokens, so `input_ids` is (B, P+T) and response token t of row b sits at column
P + t. The logprob of response token t (predicted from everything before it) is column P - 1 + t of
`prmkit.lm.token_logprobs`' (B, P+T-1) output; `response_logprobs` does that gather.

Steps: `step_end[b, k]` is the response-token index (0..T-1) of step k's last token, `step_mask`
marks real steps (padding after a row's last step). `step_of_token[b, t]` is the step holding token
t (S for tokens after the last step end, e.g. EOS, and for padding).

A step's batch: `sample_groups` draws K responses per problem (each problem from its own seed),
`lay_out` grades them and places their steps, `score_steps` adds a frozen reward model's step
scores. Every random draw of a run is seeded by `seed_for(seed, step, purpose, ...)`, so a resumed
run draws what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from prmkit.errors import InputError
from prmkit.policy.base import SamplingParams
from prmkit.policy.sample import completion_to_trace
from prmkit.rl.shaping import inject_reward_noise
from prmkit.steps import step_end_positions_joint

# field -> shape in named dims; checked by RolloutBatch.validate()
SHAPES: dict[str, tuple[str, ...]] = {
    "input_ids": ("B", "P+T"),
    "attention_mask": ("B", "P+T"),
    "response_mask": ("B", "T"),
    "old_logprobs": ("B", "T"),
    "ref_logprobs": ("B", "T"),
    "step_end": ("B", "S"),
    "step_mask": ("B", "S"),
    "step_of_token": ("B", "T"),
    "step_scores": ("B", "S"),
    "outcomes": ("B",),
    "groups": ("B",),
    "loss_rows": ("B",),
    "step_rewards": ("B", "S"),
    "token_rewards": ("B", "T"),
    "advantages": ("B", "T"),
}


@dataclass
class RolloutBatch:
    """One step's responses; every tensor's shape is given in `SHAPES` (None = not computed yet)."""

    prompt_len: int
    """P: tokens of the (left-padded) prompt block"""
    input_ids: torch.Tensor  # (B, P+T) long: left-padded prompt + right-padded response
    attention_mask: torch.Tensor  # (B, P+T) long: 1 on real tokens
    response_mask: torch.Tensor  # (B, T) bool: True on real response tokens (EOS included)
    outcomes: torch.Tensor  # (B,) float: graded outcome reward in {0, 1}
    groups: torch.Tensor  # (B,) long: prompt index of each row (rows of one prompt share it)
    step_end: torch.Tensor  # (B, S) long: response-token index of each step's last token (0 on padding)
    step_mask: torch.Tensor  # (B, S) bool: True on real steps
    step_of_token: torch.Tensor  # (B, T) long: step holding each token, S outside any step
    old_logprobs: torch.Tensor | None = None  # (B, T) float: log pi_old of response tokens (0 on padding)
    ref_logprobs: torch.Tensor | None = None  # (B, T) float: log pi_ref of response tokens
    step_scores: torch.Tensor | None = None  # (B, S) float: frozen reward model's step scores
    loss_rows: torch.Tensor | None = None  # (B,) bool: rows that enter the policy loss (filters)
    step_rewards: torch.Tensor | None = None  # (B, S) float: shaped process reward per step
    token_rewards: torch.Tensor | None = None  # (B, T) float: process reward per token
    advantages: torch.Tensor | None = None  # (B, T) float
    prompts: list[str] = field(default_factory=list)  # (B,) prompt text of each row
    steps: list[list[str]] = field(default_factory=list)  # (B, S_b) step texts
    texts: list[str] = field(default_factory=list)  # (B,) response texts
    finish_reasons: list[str] = field(default_factory=list)  # (B,)

    @property
    def batch_size(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_response_tokens(self) -> int:
        return int(self.response_mask.shape[1])

    @property
    def group_size(self) -> int:
        """K when every prompt has the same number of rows (0 otherwise)."""
        counts = torch.bincount(self.groups)
        counts = counts[counts > 0]
        return int(counts[0]) if bool((counts == counts[0]).all()) else 0

    def validate(self) -> "RolloutBatch":
        """Check every tensor field against `SHAPES`; raise InputError naming the field."""
        B, T, S = self.batch_size, self.num_response_tokens, int(self.step_end.shape[1])
        dims = {"B": B, "T": T, "S": S, "P+T": self.prompt_len + T}
        for name, shape in SHAPES.items():
            value = getattr(self, name)
            if value is None:
                continue
            want = tuple(dims[d] for d in shape)
            if tuple(value.shape) != want:
                raise InputError(f"expected shape {want} {shape}, got {tuple(value.shape)}",
                                 field=f"RolloutBatch.{name}")
        for name in ("prompts", "steps", "texts", "finish_reasons"):
            if getattr(self, name) and len(getattr(self, name)) != B:
                raise InputError(f"expected {B} entries, got {len(getattr(self, name))}", field=f"RolloutBatch.{name}")
        return self

    def select(self, rows: torch.Tensor) -> "RolloutBatch":
        """The sub-batch of `rows` ((R,) long indices), every field sliced alike."""
        idx = rows.tolist()
        kwargs: dict[str, Any] = {"prompt_len": self.prompt_len}
        for name in SHAPES:
            value = getattr(self, name)
            kwargs[name] = None if value is None else value[rows]
        for name in ("prompts", "steps", "texts", "finish_reasons"):
            seq = getattr(self, name)
            kwargs[name] = [seq[i] for i in idx] if seq else []
        return RolloutBatch(**kwargs)


def build_batch(prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]],
                step_ends: Sequence[Sequence[int]], outcomes: Sequence[float], groups: Sequence[int],
                pad_id: int, **meta: Any) -> RolloutBatch:
    """Lay out B (prompt, response) token lists as a RolloutBatch.

    step_ends[b]: strictly increasing response-token indices of row b's step ends (may be empty).
    """
    B = len(response_ids)
    if not (len(prompt_ids) == len(step_ends) == len(outcomes) == len(groups) == B):
        raise InputError("prompt_ids, response_ids, step_ends, outcomes and groups need one entry per row",
                         field="build_batch")
    if any(len(r) == 0 for r in response_ids):
        raise InputError("every response needs at least one token", field="response_ids")
    P = max(len(p) for p in prompt_ids)
    T = max(len(r) for r in response_ids)
    S = max(1, max(len(e) for e in step_ends))
    input_ids = torch.full((B, P + T), pad_id, dtype=torch.long)  # (B, P+T)
    attention = torch.zeros((B, P + T), dtype=torch.long)  # (B, P+T)
    response_mask = torch.zeros((B, T), dtype=torch.bool)  # (B, T)
    step_end = torch.zeros((B, S), dtype=torch.long)  # (B, S)
    step_mask = torch.zeros((B, S), dtype=torch.bool)  # (B, S)
    step_of_token = torch.full((B, T), S, dtype=torch.long)  # (B, T)
    for b, (p, r, ends) in enumerate(zip(prompt_ids, response_ids, step_ends)):
        input_ids[b, P - len(p):P] = torch.tensor(list(p), dtype=torch.long)
        input_ids[b, P:P + len(r)] = torch.tensor(list(r), dtype=torch.long)
        attention[b, P - len(p):P + len(r)] = 1
        response_mask[b, :len(r)] = True
        start = 0
        for k, e in enumerate(ends):
            if not start <= e < len(r):
                raise InputError(f"step end {e} outside the response's tokens [{start}, {len(r)})",
                                 field=f"step_ends[{b}][{k}]")
            step_end[b, k], step_mask[b, k] = e, True
            step_of_token[b, start:e + 1] = k
            start = e + 1
    return RolloutBatch(prompt_len=P, input_ids=input_ids, attention_mask=attention, response_mask=response_mask,
                        outcomes=torch.tensor(list(outcomes), dtype=torch.float32),
                        groups=torch.tensor(list(groups), dtype=torch.long), step_end=step_end,
                        step_mask=step_mask, step_of_token=step_of_token, **meta).validate()


def response_logprobs(model, batch: RolloutBatch, rows: torch.Tensor | None = None) -> torch.Tensor:
    """log p(response token t | prefix) for every row (or `rows`): (B, T) float, 0 on padding.

    Gradients flow when called outside `torch.no_grad()`.
    """
    from prmkit.lm import token_logprobs

    ids, att, mask = batch.input_ids, batch.attention_mask, batch.response_mask
    if rows is not None:
        ids, att, mask = ids[rows], att[rows], mask[rows]
    device = next(model.parameters()).device
    lp = token_logprobs(model, ids.to(device), att.to(device))  # (B, P+T-1)
    P = batch.prompt_len
    out = lp[:, P - 1:].float().cpu() if device.type != "cpu" else lp[:, P - 1:]  # (B, T)
    return torch.where(mask, out, torch.zeros_like(out))  # (B, T)


def seed_for(*parts: int) -> int:
    """A 63-bit seed from integer parts (FNV-1a style): (seed, step, purpose, index) -> its own stream."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


def sample_groups(sampler, problems: list, seeds: list[int], k: int, max_new_tokens: int,
                  temperature: float) -> list:
    """K samples per problem, each problem's from its own seed, with the sampler's model in eval mode
    (back in train mode after) -> [[Completion] * K]."""
    params = SamplingParams(n=k, max_new_tokens=max_new_tokens, temperature=temperature)
    sampler.model.eval()
    groups = sampler.sample([sampler.render(p.prompt) for p in problems], params, seeds=seeds)
    sampler.model.train()
    return groups


def lay_out(problems: list, groups: list, sampler, tokenizer, sep: str) -> RolloutBatch:
    """Grade every completion and lay the groups out as one RolloutBatch (outcomes, steps, step ends);
    a row whose steps do not map onto its tokens gets no step credit."""
    prompt_ids, resp, ends, outcomes, gids, prompts, steps, texts, finish = [], [], [], [], [], [], [], [], []
    for g, (p, comps) in enumerate(zip(problems, groups)):
        pid = sampler.encode_prompt(sampler.render(p.prompt))  # the policy's input; the RM renders its own
        for j, c in enumerate(comps):
            trace = completion_to_trace(p, c, j)
            try:
                e = step_end_positions_joint(tokenizer, c.token_ids, c.steps, sep)
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
    return build_batch(prompt_ids, resp, ends, outcomes, gids, tokenizer.pad_token_id,
                       prompts=prompts, steps=steps, texts=texts, finish_reasons=finish)


def score_steps(batch: RolloutBatch, rm, noise_std: float = 0.0, noise_seed: int = 0) -> None:
    """Set `batch.step_scores` (B,S) from a frozen reward model (a row without steps scores 0), with
    seeded Gaussian noise of `noise_std` on real steps (noisy-reward experiments)."""
    rows = [b for b, ss in enumerate(batch.steps) if ss]  # a response without steps gets no step score
    scores = rm.score([batch.prompts[b] for b in rows], [batch.steps[b] for b in rows]) if rows else []
    grid = torch.zeros(batch.step_mask.shape)
    for b, row in zip(rows, scores):
        if row:
            grid[b, :len(row)] = torch.tensor(row, dtype=torch.float32)
    if noise_std > 0:
        gen = torch.Generator().manual_seed(noise_seed)
        grid = inject_reward_noise(grid, std=noise_std, generator=gen, mask=batch.step_mask)
    batch.step_scores = torch.where(batch.step_mask, grid, torch.zeros_like(grid))
