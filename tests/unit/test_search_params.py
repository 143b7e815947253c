"""SearchParams is the shared knobs then MCTS's own, flat: the option names, defaults and order of the
command line and of saved configs are those of the one flat record it was before it was split."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest

from prmkit.errors import InputError
from prmkit.search import SEARCHES, CommonParams, MCTSParams, SearchParams, search_strategy

# the 25 knobs as the flat SearchParams declared them (name, default), in order, before the split
FLAT = [("n", 4), ("beam_width", 4), ("lookahead", 0), ("dedup", False), ("tau", 4), ("keep_fraction", 0.0),
        ("temperature", 0.8), ("top_p", 1.0), ("max_step_tokens", 256), ("max_steps", 40), ("max_new_tokens", 1024),
        ("aggregation", ""), ("select", "weighted"), ("seed", 0), ("branch", 3), ("c_uct", 0.7), ("rollout_steps", 3),
        ("rollout_alpha", 0.5), ("end_gate", 0.9), ("max_iterations", 50), ("token_budget", 0), ("widen", 0.0),
        ("merge_siblings", False), ("widen_gate", 0.0), ("max_expansions", 0)]
MCTS_ONLY = {"branch", "c_uct", "rollout_steps", "rollout_alpha", "end_gate", "max_iterations", "token_budget",
             "widen", "merge_siblings", "widen_gate", "max_expansions"}


def test_the_flat_record_keeps_its_names_defaults_and_order():
    assert [(f.name, f.default) for f in fields(SearchParams)] == FLAT
    assert list(asdict(SearchParams())) == [name for name, _ in FLAT]   # saved configs and search.json's setup
    assert {f.name for f in fields(MCTSParams)} == MCTS_ONLY
    assert [f.name for f in fields(CommonParams)] == [name for name, _ in FLAT if name not in MCTS_ONLY]


def test_mcts_group_is_its_own_record():
    p = replace(SearchParams(), branch=2, widen_gate=0.5, n=9)
    assert p.mcts == MCTSParams(branch=2, widen_gate=0.5)      # n is not an MCTS knob
    assert isinstance(p, MCTSParams) and isinstance(p, CommonParams)


@pytest.mark.parametrize("bad, field", [(dict(n=0), "n"), (dict(tau=0), "tau"), (dict(lookahead=-1), "lookahead"),
                                        (dict(branch=0), "branch"), (dict(max_iterations=0), "max_iterations"),
                                        (dict(widen=-0.5), "widen"), (dict(token_budget=-1), "token_budget"),
                                        (dict(select="best"), "select"), (dict(keep_fraction=2.0), "keep_fraction")])
def test_each_group_checks_its_own_knobs(bad, field):
    with pytest.raises(InputError) as e:
        SearchParams(**bad)
    assert e.value.field == field
    group = MCTSParams if field in MCTS_ONLY else CommonParams
    with pytest.raises(InputError):
        group(**bad)                                            # the group alone refuses it too


def test_search_help_lists_every_knob_with_its_default():
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"}
    text = subprocess.run([sys.executable, "-m", "prmkit.cli", "search", "--help"], capture_output=True, text=True,
                          env=env, cwd=root, check=True).stdout
    lines = text.splitlines()
    for name, default in FLAT:
        opt = "--" + name.replace("_", "-")
        if name == "n":
            default = 16   # `prmkit search` overrides N's default
        row = [ln for ln in lines if f" {opt} " in ln or ln.rstrip().endswith(f" {opt}") or f" {opt}," in ln]
        assert row, opt
        i = lines.index(row[0])
        j = next((k for k in range(i + 1, len(lines)) if " --" in lines[k] or "──" in lines[k]), len(lines))
        block = "\n".join(lines[i:j])   # the option's row and the lines its help wraps onto
        if isinstance(default, bool):
            assert f"--no-{name.replace('_', '-')}" in row[0] and "[default: no-" in block, (opt, block)
        elif default == "":
            assert "[default:" not in row[0], (opt, block)   # an empty default is not printed
        else:
            assert f"[default: {default}]" in block, (opt, block)


def test_a_strategy_registers_itself_once():
    builtins = ["best_of_n", "beam", "dvts", "early_reject", "mcts"]
    assert [name for name in SEARCHES if name in builtins] == builtins   # all registered, in import order

    def twin(problems, sampler, rm, params):
        return None
    with pytest.raises(ValueError, match="already registered"):
        search_strategy("beam")(twin)
    assert SEARCHES["beam"].__name__ == "beam"
    assert search_strategy("mcts")(SEARCHES["mcts"]) is SEARCHES["mcts"]   # re-importing a module is harmless
