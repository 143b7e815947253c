# no `from __future__ import annotations` here: FastAPI must resolve the endpoint annotations at runtime
"""OpenRLHF's remote reward model protocol on `prmkit serve`: `--remote_rm_url http://host:port/get_reward`.

OpenRLHF (0.11) posts `{"query": [...], "prompts": [...], "labels": [...]}` to the URL: each `query` is
the prompt and the response decoded together (special tokens kept), `prompts` the prompt text alone,
`labels` the dataset's label. It reads `rewards` (one number per query), `scores` and `extra_logs`
from the answer. This route takes that body, cuts each response off its prompt, drops trailing stop
strings (the PRM tokenizer's EOS/pad, or `strip`), splits it into steps server-side (the model's step
separator, or a `prmkit.steps.split_solution` mode), and scores the steps through the same checks and
batcher as `/score`. It answers `rewards` and `scores` (the aggregate of the step scores, one per
query), `step_scores` (every step's score) and `steps` (the split, so it can be checked), and
`extra_logs` with numbers only (OpenRLHF makes a tensor of each value): `num_steps`, `min_step_score`,
`empty_response`. A response with no step gets reward `empty_reward` (0.0) and `empty_response` 1.
"""

from dataclasses import dataclass
from typing import Any, Optional

ROUTE = "/get_reward"


@dataclass
class RawTextFormat:
    """How `/get_reward` turns raw text into steps."""

    sep: str = "\n"
    """the model's step separator (splits a response when `split` is empty)"""
    split: str = ""
    """a prmkit.steps.split_solution mode (double_newline, newline, regex:<p>, step_markers); empty: on `sep`"""
    strip: tuple = ()
    """trailing strings removed from each response before splitting (EOS/pad text)"""
    empty_reward: float = 0.0


def model_format(reward_model, split: str = "", strip: str = "") -> RawTextFormat:
    """The raw-text format of a reward model: its own separator and its tokenizer's EOS/pad text, unless
    `strip` (comma-separated) names the strings to remove."""
    sep = getattr(reward_model, "sep", None) or getattr(getattr(reward_model, "readout", None), "sep", None) or "\n"
    if strip:
        stops = tuple(s for s in strip.split(",") if s)
    else:
        tok = getattr(reward_model, "tokenizer", None)
        stops = tuple(s for s in (getattr(tok, "eos_token", None), getattr(tok, "pad_token", None)) if s)
    if split:
        from prmkit.steps import check_split_mode

        check_split_mode(split)
    return RawTextFormat(sep=sep, split=split, strip=stops)


def response_of(query: str, prompt: Optional[str], index: int) -> str:
    """The response part of an OpenRLHF query (the prompt and the response decoded together)."""
    if prompt is None:
        return query
    if not query.startswith(prompt):
        raise ValueError(f"field 'query[{index}]': does not start with prompts[{index}] "
                         f"(OpenRLHF sends the prompt followed by the response)")
    return query[len(prompt):]


def split_response(text: str, fmt: RawTextFormat) -> list:
    """Steps of one raw response: trailing stop strings removed, then split by `fmt`."""
    from prmkit.steps import split_solution, split_steps

    changed = True
    while changed:
        changed = False
        text = text.rstrip()
        for s in fmt.strip:
            if text.endswith(s):
                text, changed = text[:-len(s)], True
    return split_solution(text, fmt.split) if fmt.split else split_steps(text, fmt.sep)


def mount(app, score_checked, fmt: RawTextFormat, default_how: str) -> None:
    """Add POST /get_reward to the reward server's `app`. `score_checked(prompts, steps, key)` is the
    server's guarded scoring (limits, admission, batcher), raising HTTPException on a refusal."""
    from fastapi import HTTPException
    from pydantic import BaseModel, ConfigDict

    from prmkit.rewards.aggregate import aggregate

    class OpenRLHFRequest(BaseModel):
        model_config = ConfigDict(extra="allow")
        query: list[str]
        prompts: Optional[list[str]] = None
        labels: Optional[list[Any]] = None

    @app.post(ROUTE)
    async def get_reward(req: OpenRLHFRequest) -> dict:
        n = len(req.query)
        if req.prompts is not None and len(req.prompts) != n:
            raise HTTPException(status_code=422, detail=f"field 'prompts': expected {n} strings (one per "
                                                        f"query), got {len(req.prompts)}")
        prompts = req.prompts if req.prompts is not None else [""] * n
        try:
            responses = [response_of(q, req.prompts[i] if req.prompts is not None else None, i)
                         for i, q in enumerate(req.query)]
        except ValueError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        steps = [split_response(r, fmt) for r in responses]
        rows = await score_checked(list(prompts), steps, "query")
        rewards = [float(aggregate(row, default_how)) if row else fmt.empty_reward for row in rows]
        # OpenRLHF turns every extra_logs value into a tensor: numbers only, one per query
        return {"rewards": rewards, "scores": rewards,
                "step_scores": [[float(v) for v in row] for row in rows], "steps": steps,
                "extra_logs": {"num_steps": [len(s) for s in steps],
                               "min_step_score": [float(min(row)) if row else fmt.empty_reward for row in rows],
                               "empty_response": [float(not s) for s in steps]}}
