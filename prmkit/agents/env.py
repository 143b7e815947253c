"""The one small interface an agent environment implements, and the multi-turn episode record.

An environment is made per episode from a problem (`make_env(problem)`), so rollouts of many
episodes never share state. The policy writes one action (a line of text); the environment
answers with an observation, until the action finishes the episode or a turn budget runs out.
A user's own tool environment (a real search index, an API) implements the same two methods.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from prmkit.errors import InputError
from prmkit.schema import Problem


@dataclass
class Observation:
    """What the environment answers to one action."""

    text: str
    """the observation line appended to the context ('' when the episode ended)"""
    done: bool
    """True when the action finished the episode"""


class Environment(Protocol):
    """One episode of a tool environment."""

    def reset(self) -> str:
        """The text the policy sees before its first action (the prompt)."""

    def step(self, action: str) -> Observation:
        """Apply one action (one line, without its newline) and answer it."""


EnvFactory = Callable[[Problem], Environment]


@dataclass
class Turn:
    """One turn of an episode: the policy's action, the environment's observation, gold where known."""

    action: str
    observation: str
    gold: dict[str, Any] = field(default_factory=dict)


@dataclass
class Episode:
    """A finished (or budget-cut) multi-turn episode."""

    problem_id: str
    prompt: str
    turns: list[Turn]
    finished: bool
    answer: str | None = None
    outcome: float | None = None
    first_error: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The whole context as the policy saw it: prompt, then each action and observation line."""
        out = self.prompt
        for t in self.turns:
            out += t.action + "\n" + (t.observation + "\n" if t.observation else "")
        return out


def run_episode(env: Environment, actions: list[str], max_turns: int = 0) -> tuple[str, list[Turn], bool]:
    """Play a fixed list of actions in `env` (oracle or recorded trajectories): (prompt, turns, finished).
    Actions after the one that finishes the episode are not played."""
    prompt, turns = env.reset(), []
    for action in actions[: max_turns or None]:
        obs = env.step(action)
        turns.append(Turn(action=action, observation=obs.text))
        if obs.done:
            return prompt, turns, True
    return prompt, turns, False


@dataclass
class EnvTask:
    """An environment as prmkit uses it: how to start an episode, how to grade a finished one, and
    (optionally) exact per-turn gold for a list of actions."""

    name: str
    make_env: EnvFactory
    outcome: Callable[[Problem, Episode], float]
    """the episode's reward (1 right, 0 wrong for a graded task)"""
    gold: Callable[[Problem, list[str]], list[dict[str, Any]]] | None = None
    """per-turn gold fields (`valid`, `useful`, `redundant`, `hallucinated`, `wrong`, `info_gain`, ...)"""
    judgements: Callable[[Problem, list[str]], list[bool | None]] | None = None
    """the agent's own Yes/No verdict on each turn's observation (ReSeek's JUDGE action, arXiv 2510.00568),
    read from its actions by the environment's grammar; None per turn it did not judge. hopgym's grammar
    has no judge action, so it gives none"""
    relevance: Callable[[Problem, Episode], list[float]] | None = None
    """how relevant each turn's observation is to the gold answer, in [0, 1] (ReSeek's reranker score)"""


ENV_TASKS: dict[str, Callable[[], EnvTask]] = {}
"""environments registered at run time (`register_env`)"""
BUILTIN_ENVS: dict[str, str] = {
    "hopgym": "prmkit.agents.hopgym:hopgym_task",
    "calc": "prmkit.agents.calc_env:calc_task",
}
"""the built-in environments by "module:factory", imported on first use (they import this module)"""


def register_env(name: str):
    """Register a factory of an `EnvTask` under `name` (a problem's `task` field names it)."""
    def wrap(fn):
        ENV_TASKS[name] = fn
        return fn
    return wrap


def get_env_task(name: str) -> EnvTask:
    """A registered environment by name (`hopgym`, `calc`), or a user's `package.module:factory` (a
    function returning an `EnvTask`)."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)()
        except (ImportError, AttributeError) as e:
            raise InputError(f"cannot load environment {name!r}: {e}", field="env") from None
    if name in ENV_TASKS:
        return ENV_TASKS[name]()
    if name not in BUILTIN_ENVS:
        raise InputError(f"unknown environment {name!r}; expected one of "
                         f"{', '.join(sorted(set(ENV_TASKS) | set(BUILTIN_ENVS)))}", field="task")
    module, _, attr = BUILTIN_ENVS[name].partition(":")
    return getattr(importlib.import_module(module), attr)()
