"""The labelling-method registry: `prmkit label --method NAME` runs `LABELLERS[NAME]`.

Every method has one signature, `fn(items, **arguments) -> list[Trace]`: `items` are the
(global trace index, trace) pairs of one chunk (the index seeds that trace's randomness) and the
result holds one copy of each trace, in order, labelled or (with `meta["label"]["dropped"]`) not.
A method names in `@labeller(name, needs=(...))` which of the run's `INPUTS` it takes; each is a
keyword parameter of that name. Its other keyword parameters are settings, given the value of the
`LabelConfig` field of the same name. So adding a method is one decorated function in
`label/methods.py`:

    @labeller("first_step_bad", needs=("problems",))
    def first_step_bad(items, *, problems, k):
        ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prmkit.schema import Trace

# what a run provides to the methods that declare it
INPUTS: dict[str, str] = {
    "sampler": "the completer policy (--model, --sampler): rolls out step prefixes",
    "prover": "the progress prover (--prover; the completer when empty)",
    "judge": "the first-error judge (--judge rule|lm)",
    "problems": "problems with gold answers by id (--problems; None: answers read from gym prompts)",
    "self_confidence": "each problem's share of its traces graded right, over the whole input",
    "rollouts": "the rollout settings (k, max_new_tokens, temperature, seed, sep) as a RolloutConfig",
}
POLICY_INPUTS = ("sampler", "prover")  # inputs that sample from the --model policy


@dataclass(frozen=True)
class Labeller:
    """A registered method: its function, the inputs it takes and its settings (config field names)."""

    name: str
    fn: Callable[..., list[Trace]]
    needs: tuple[str, ...]
    settings: tuple[str, ...]

    @property
    def uses_policy(self) -> bool:
        """Whether the method rolls out the --model policy (its prompt format is then recorded)."""
        return any(n in POLICY_INPUTS for n in self.needs)

    def __call__(self, items: Sequence[tuple[int, Trace]], inputs: Mapping[str, Any],
                 settings: Mapping[str, Any]) -> list[Trace]:
        """Label one chunk: the declared inputs from `inputs`, the settings from `settings`."""
        items = list(items)
        out = self.fn(items, **{n: inputs[n] for n in self.needs}, **{s: settings[s] for s in self.settings})
        if len(out) != len(items):
            raise RuntimeError(f"label method {self.name!r} returned {len(out)} traces for {len(items)}")
        return out


LABELLERS: dict[str, Labeller] = {}  # filled by label/methods.py (import `get_labeller` from there)


def labeller(name: str, needs: Sequence[str] = ()):
    """Register `fn(items, *, <needs>, <settings>) -> list[Trace]` as label method `name`."""
    def wrap(fn):
        if name in LABELLERS:
            raise ValueError(f"label method {name!r} registered twice")
        unknown = [n for n in needs if n not in INPUTS]
        if unknown:
            raise ValueError(f"label method {name!r} needs unknown inputs {unknown}; known: {sorted(INPUTS)}")
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].name != "items":
            raise ValueError(f"label method {name!r}: the first parameter must be `items`")
        keywords = [p.name for p in params[1:]]
        missing = [n for n in needs if n not in keywords]
        undeclared = [k for k in keywords if k in INPUTS and k not in needs]
        if missing or undeclared:
            raise ValueError(f"label method {name!r}: declared needs {list(needs)} but takes {keywords}")
        LABELLERS[name] = Labeller(name, fn, tuple(needs), tuple(k for k in keywords if k not in needs))
        return fn
    return wrap

