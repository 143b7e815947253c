"""hopgym's shipped policy and built-in splits apply to hopgym only: other environments must name theirs."""

from __future__ import annotations

import pytest

from prmkit.agents.inputs import SHIPPED_AGENT, agent_policy, agent_problems
from prmkit.errors import InputError


def test_hopgym_defaults_are_said(capsys):
    assert agent_policy("", "hopgym") == str(SHIPPED_AGENT)
    assert len(agent_problems("", "hopgym", "dev", 3)) == 3
    err = capsys.readouterr().err
    assert "shipped agent policy" in err and "built-in dev split" in err


def test_other_environments_need_a_model_and_problems(tmp_path):
    with pytest.raises(InputError, match="pass --model"):
        agent_policy("", "calc")
    with pytest.raises(InputError, match="pass --problems"):
        agent_problems("", "calc", "dev", 3)
    with pytest.raises(InputError, match="no such directory"):
        agent_policy(str(tmp_path / "missing"), "calc")
