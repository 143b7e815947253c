"""Where an agent command's policy and problems come from (one place for `agent rl|sample|stats|search`).

hopgym's shipped agent policy and built-in splits apply to hopgym only, and are said on stderr when used;
any other environment must be given `--model` and `--problems`, checked before anything loads.
"""

from __future__ import annotations

from pathlib import Path

from prmkit.errors import InputError
from prmkit.schema import Problem

SHIPPED_AGENT = Path(__file__).resolve().parent / "hopgym" / "policy"


def agent_policy(model: str, env: str) -> str:
    """The policy to load: `model`, or hopgym's shipped agent policy for hopgym (said); else an error."""
    from prmkit.reading import check_model_name
    from prmkit.resolve import note

    if model:
        return check_model_name(model, "model", "a policy")
    if env != "hopgym":
        raise InputError(f"environment {env!r} has no shipped agent policy: pass --model", field="model")
    note(f"using hopgym's shipped agent policy ({SHIPPED_AGENT}); pass --model for your own")
    return str(SHIPPED_AGENT)


def agent_problems(path: str, env: str, split: str, n: int, flag: str = "--problems") -> list[Problem]:
    """`n` problems from `path`, or hopgym's built-in `split` (said); an error for another environment."""
    from prmkit.schema import read_problems

    if path:
        problems = read_problems(path)[:n]
    elif env == "hopgym":
        from prmkit.agents.hopgym import make_split
        from prmkit.resolve import note

        note(f"problems: hopgym's built-in {split} split ({n})")
        problems = make_split(split, n)
    else:
        raise InputError(f"environment {env!r} has no built-in problems: pass {flag}", field=flag[2:])
    if not problems:
        raise InputError("expected at least one problem", file=path or None)
    return problems
