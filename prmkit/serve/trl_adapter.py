"""Any prmkit reward model as a TRL reward function (`reward_funcs` of `GRPOTrainer`, `RLOOTrainer`).

    from trl import GRPOConfig, GRPOTrainer
    from prmkit.rewards.remote import RemoteRM
    from prmkit.serve.trl_adapter import TRLRewardFunction

    reward = TRLRewardFunction(RemoteRM("http://gpu-box:8001"), sep="\\n\\n", aggregation="min")
    GRPOTrainer(model=..., reward_funcs=[reward], args=GRPOConfig(...), train_dataset=...)

TRL calls a reward function as `f(prompts=..., completions=..., completion_ids=..., **columns)`
and expects one float (or None) per completion; it logs the values under `rewards/<__name__>/`.
The adapter splits each completion into steps on `sep` (`prmkit.steps.split_steps`, the one
definition of a step), scores all completions of the call with one `score` call of the reward
model, and aggregates each completion's step scores with `aggregation` (default: the model's
own rule) through `prmkit.rewards.aggregate.aggregate`.

Conversational rows work too: a prompt given as a list of messages is read as its last user
message, and a completion as the text of its assistant messages. A completion with no step
(empty or blank) gets `empty_score` (default 0.0: an empty answer is never rewarded; None makes
TRL treat it as missing).
"""

from __future__ import annotations

from typing import Any, Sequence

from prmkit.rewards.aggregate import AGGREGATIONS, aggregate
from prmkit.steps import DEFAULT_SEP, split_steps


def message_text(x: Any, role: str | None = None) -> str:
    """Text of a standard (str) or conversational (list of {role, content}) prompt/completion.

    `role="user"`: the last user message (a chat prompt); `role="assistant"`: the assistant
    messages joined (a chat completion); a plain string is returned as is.
    """
    if isinstance(x, str):
        return x
    if isinstance(x, dict):
        x = [x]
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"expected a string or a list of chat messages, got {type(x).__name__}")
    msgs = [m for m in x if isinstance(m, dict)]
    if role == "user":
        users = [m for m in msgs if m.get("role") == "user"]
        return _content(users[-1]) if users else "".join(_content(m) for m in msgs)
    picked = [m for m in msgs if role is None or m.get("role") == role] or msgs
    return "".join(_content(m) for m in picked)


def _content(message: dict) -> str:
    c = message.get("content", "")
    if isinstance(c, list):  # multimodal content parts: keep the text parts
        return "".join(p.get("text", "") for p in c if isinstance(p, dict))
    return str(c)


class TRLRewardFunction:
    """A callable `(prompts, completions, **kwargs) -> list[float | None]` over a prmkit reward model.

    `last_scores` keeps the step scores of the latest call (one list per completion) for logging
    and tests; `calls` counts calls.
    """

    def __init__(self, reward_model, sep: str = DEFAULT_SEP, aggregation: str | None = None,
                 name: str | None = None, empty_score: float | None = 0.0, step_split: str = ""):
        from prmkit.steps import check_split_mode

        self.rm, self.sep = reward_model, sep
        self.step_split = step_split  # a `split_solution` mode (e.g. "double_newline"); empty: split on `sep`
        if step_split:
            check_split_mode(step_split)
        self.aggregation = aggregation or reward_model.aggregation
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; expected one of {sorted(AGGREGATIONS)}")
        self.empty_score = empty_score
        # TRL names the logged metric after __name__ (rewards/<name>/mean)
        self.__name__ = name or f"prmkit_{self.aggregation}"
        self.last_scores: list[list[float]] = []
        self.calls = 0

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if len(prompts) != len(completions):
            raise ValueError(f"expected one prompt per completion, got {len(prompts)} and {len(completions)}")
        self.calls += 1
        prompt_texts = [message_text(p, "user") for p in prompts]
        steps = [self._split(message_text(c, "assistant")) for c in completions]
        keep = [i for i, s in enumerate(steps) if s]
        rows = self.rm.score([prompt_texts[i] for i in keep], [steps[i] for i in keep]) if keep else []
        out: list[float | None] = [self.empty_score] * len(completions)
        self.last_scores = [[] for _ in completions]
        for i, row in zip(keep, rows):
            self.last_scores[i] = list(row)
            out[i] = aggregate(row, self.aggregation)
        return out

    def _split(self, text: str) -> list[str]:
        if self.step_split:
            from prmkit.steps import split_solution

            return split_solution(text, self.step_split)
        return split_steps(text, self.sep)
