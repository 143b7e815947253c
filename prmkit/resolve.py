"""The one resolver: a name typed on the command line -> a component (reward model, policy, task).

Reward-model specs (every command that takes a reward model reads this grammar, here only):

    gym | gym-prm              the shipped gym PRM
    checker | checker:0.1      the gym's exact checker, optionally flipping each verdict with that rate
    (gym-checker is an alias of checker)
    http(s)://host:port        a `prmkit serve` server; bearer token from the command's token option or
    (remote:<url> is an alias) $PRMKIT_RM_TOKEN
    path/to/dir                a saved reward model (prmkit_rm.json) or an external PRM dir
    org/name                   a hub id
    (empty)                    the gym default, the shipped gym PRM, only when the data is the gym's;
                               otherwise an error saying to pass the option

Validation is split from loading: `parse_rm_spec` checks a spec (a local-looking path must exist, a
remote server must accept the token) in milliseconds, so a command can check every option before it
loads its first model; `RMSpec.load` then builds the component. A gym default that is used is said on
stderr, never applied silently to user data.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from prmkit.errors import InputError
from prmkit.gym.checker_rm import GymCheckerRM
from prmkit.gym.task import check_prompts, parse_prompt
from prmkit.gym.train_policy import SHIPPED_POLICY_DIR
from prmkit.reading import check_model_name, is_hub_id, looks_local  # noqa: F401  (re-exported: the path rules)
from prmkit.rewards import default_gym_prm, load_options, load_reward_model
from prmkit.rewards.remote import RemoteRM
from prmkit.schema import iter_jsonl
from prmkit.schema import read_problems as read_problem_records
from prmkit.tasks import GRADERS

TOKEN_ENV = "PRMKIT_RM_TOKEN"
GYM_PRM_NAMES = ("gym", "gym-prm")
CHECKER_NAMES = ("checker", "gym-checker")
GYM_POLICY_NAMES = ("gym", "gym-policy")


def note(message: str) -> None:
    """Say on stderr what a command chose for the user (a gym default, a fallback)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- gym data


def is_gym_prompt(prompt: str) -> bool:
    try:
        parse_prompt(prompt)
    except (InputError, ValueError, TypeError):
        return False
    return True


def all_gym_prompts(prompts: Iterable[str]) -> bool:
    prompts = list(prompts)
    return bool(prompts) and all(is_gym_prompt(p) for p in prompts)


def gym_default(option: str, gym_data: bool, used: str, to_pass: str) -> None:
    """Say that the gym default of `option` is used, or refuse when the data is not the gym's."""
    if not gym_data:
        raise InputError(f"the data is not the gym's, so there is no default: pass {to_pass}", field=option)
    note(f"{used} (gym default of --{option.replace('_', '-')}; the data is the gym's)")


# --------------------------------------------------------------------------- reward models


@dataclass(frozen=True)
class RMSpec:
    """A checked reward-model spec: `form` is gym-prm, checker, remote, local or hub."""

    form: str
    target: str = ""
    flip_rate: float = 0.0
    token: str = field(default="", repr=False)      # never printed

    def describe(self) -> str:
        return {"gym-prm": "shipped gym PRM", "checker": f"gym checker (flip rate {self.flip_rate})",
                "remote": f"remote {self.target}"}.get(self.form, f"reward model {self.target}")

    def load(self, aggregation: str = "", device: str = "", readout: str = "", trust_remote_code: bool = False,
             dtype: str = "", **kw):
        """The reward model; `kw` go to the local loader (batch_size, kind, ...)."""
        if self.form == "checker":
            return GymCheckerRM(aggregation=aggregation or "min", flip_rate=self.flip_rate)
        if self.form == "remote":
            return RemoteRM(self.target, token=self.token or None, aggregation=aggregation or None)
        kw = {**kw, **({"aggregation": aggregation} if aggregation else {}), **({"device": device} if device else {})}
        if self.form == "gym-prm":
            return default_gym_prm(**kw)
        return load_reward_model(self.target, **kw, **load_options(readout, trust_remote_code, dtype))


def _flip(spec: str, text: str, option: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"expected checker:<flip rate in [0, 1]>, got {spec!r}", field=option)
    return rate


def parse_rm_spec(spec: str, option: str = "prm", gym_data: bool = True, token: str = "",
                  flip_rate: float = 0.0, probe: bool = True) -> RMSpec:
    """Check a reward-model spec without loading a model (see the module doc for the grammar).
    `gym_data`: whether the command's data is the gym's (an empty spec is the shipped gym PRM only
    then). `token`: the bearer token option (falls back to $PRMKIT_RM_TOKEN). `probe`: ask a remote
    server, cheaply, whether it is up and accepts the token."""
    spec = spec.strip()
    if not spec:
        gym_default(option, gym_data, "using the shipped gym PRM",
                    f"--{option.replace('_', '-')} (a reward-model dir, hub id, http(s):// server or 'checker')")
        return RMSpec("gym-prm")
    if spec in GYM_PRM_NAMES:
        return RMSpec("gym-prm")
    head, _, rest = spec.partition(":")
    if head in CHECKER_NAMES and not spec.startswith(("http:", "https:")):
        return RMSpec("checker", flip_rate=_flip(spec, rest, option) if rest else flip_rate)
    if spec.startswith("remote:"):
        spec = spec[len("remote:"):]
        if not spec.startswith(("http://", "https://")):
            raise InputError(f"expected remote:http(s)://host:port, got {'remote:' + spec!r}", field=option)
    if spec.startswith(("http://", "https://")):
        rm = RMSpec("remote", spec.rstrip("/"), token=token or os.environ.get(TOKEN_ENV, ""))
        if probe:
            probe_remote(rm, option)
        return rm
    target = check_model_name(spec, option, "a reward model")
    return RMSpec("local" if Path(target).is_dir() else "hub", target)


def probe_remote(rm: RMSpec, option: str = "prm") -> None:
    """Is the server up, and does it take our token? An empty POST /score (no model call) answers 401
    when the server wants a token we lack; anything else means authorised."""
    import httpx

    headers = {"Authorization": f"Bearer {rm.token}"} if rm.token else {}
    url = f"{rm.target}/score"
    try:
        r = httpx.post(url, json={"prompts": [], "steps": []}, headers=headers, timeout=10.0)
    except httpx.HTTPError as e:
        raise InputError(f"cannot reach the reward server: {e}", file=rm.target, field=option) from None
    if r.status_code in (401, 403):
        how = ("the server refused the token given" if rm.token else "the server requires a bearer token")
        raise InputError(f"{how}: pass --{option.replace('_', '-')}-token TOKEN or set {TOKEN_ENV}",
                         file=rm.target, field=f"{option}_token")


def resolve_reward_model(spec: str, option: str = "prm", gym_data: bool = True, token: str = "",
                         flip_rate: float = 0.0, **load_kw):
    """parse_rm_spec + load, for callers with nothing else to check first; returns the reward model."""
    return parse_rm_spec(spec, option, gym_data, token, flip_rate).load(**load_kw)


# --------------------------------------------------------------------------- policies and tasks


def default_policy() -> str:
    """The shipped gym policy's dir: the gym default of a policy option (`policy_path` applies it on gym
    data only, and says so). Layers below this module take the policy as an explicit argument."""
    return str(SHIPPED_POLICY_DIR)


def policy_path(model: str, option: str = "model", gym_data: bool = True) -> str:
    """A local causal-LM dir or hub id for `--model`: empty is the shipped gym policy on gym data only."""
    model = model.strip()
    if not model:
        gym_default(option, gym_data, "using the shipped gym policy", f"--{option.replace('_', '-')} (a model dir or hub id)")
        return str(SHIPPED_POLICY_DIR)
    if model in GYM_POLICY_NAMES:
        return str(SHIPPED_POLICY_DIR)
    return check_model_name(model, option, "a causal LM")


def check_task(task: str, file: str | None = None, line: int | None = None) -> None:
    if task not in GRADERS:
        raise InputError(f"unknown task {task!r}; expected one of {sorted(GRADERS)}", file=file, line=line,
                         field="task")


def read_problems(path: str, option: str = "problems"):
    """Problems from a prmkit JSONL, each task checked before any sampling: a record without `task` is a
    gym problem only if its prompt is a gym prompt; otherwise it must name its task."""
    p = Path(path).expanduser()
    if not p.is_file():
        what = "a directory, not a file" if p.is_dir() else "no such file"
        raise InputError(f"{what} (expected problems JSONL)", file=path, field=option)
    for line, rec in iter_jsonl(p):
        if not isinstance(rec, dict):
            continue                                           # the schema reader names it below
        task, prompt = rec.get("task"), str(rec.get("prompt", ""))
        if task is None and not (prompt.startswith("Q:") or is_gym_prompt(prompt)):
            raise InputError("missing field: the prompt is not a gym prompt, so the problem must name its task "
                             "(gsm8k, math, ...); `prmkit convert --target problems` sets it",
                             file=path, line=line, field="task")
        if task is not None:
            check_task(task, path, line)
    problems = read_problem_records(p)
    check_prompts(problems, path)                              # a gym problem's prompt must parse
    return problems


def problems_are_gym(problems) -> bool:
    return bool(problems) and all(p.task == "gym" for p in problems)


def check_file(path: str, option: str, what: str) -> str:
    """An existing file for `--option` (a clear error at once otherwise)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"expected a file ({what}), got a directory", file=path, field=option)
    if not p.exists():
        raise InputError(f"no such file (expected {what})", file=path, field=option)
    return str(p)
