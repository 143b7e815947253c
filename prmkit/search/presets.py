"""Named search settings: the gym search benchmark's fixed settings, the MCTS configurations its long_dev
selection chose among, and the cache-name suffix of an MCTS configuration.

These are choices made for the gym benchmarks (bench/search.py, bench/search_tau.py), kept here so every
benchmark and the demo read one copy; no strategy reads them by default.

    from prmkit.search.presets import BASE, BEST_FIRST, mcts_config
    params = SearchParams(tau=4, **BASE)
    mcts_params = replace(params, token_budget=2000, **mcts_config(BEST_FIRST))
"""

from __future__ import annotations

import json
from pathlib import Path

BASE = dict(beam_width=4, temperature=0.8, top_p=1.0, select="weighted", max_step_tokens=16, max_steps=13,
            max_new_tokens=160)
"""gym search bench: the settings of every point (fixed in advance; N, M = min(4, N), seed and tau vary per point)"""

MCTS_DEFAULT = dict(branch=3, rollout_steps=3, widen=0.0, merge_siblings=False, temperature=0.8)
"""ReST-MCTS*-style settings fixed in advance (the first MCTS runs); other configs come from long_dev selection."""
MCTS_MORE = dict(c_uct=0.7, select="weighted", max_iterations=50, widen_gate=0.0, max_expansions=0)
"""Further MCTS knobs a config may set (their values in every run before round 4 of bench/search_tau.py)."""

BEST_FIRST = dict(rollout_steps=0, c_uct=0.0, merge_siblings=True, select="argmax", max_iterations=400, widen_gate=0.5,
                  max_expansions=8)
"""SearchParams of best-first MCTS (value-gated widening, no rollouts, depth first among accepted steps): the
config chosen on the gym's long_dev split for the stronger verifier (bench/search_tau.py, round 4)."""

MCTS_CONFIGS = {   # name -> SearchParams overrides (MCTS_DEFAULT fills the rest)
    "rest-mcts": {},
    "rollout-to-end": dict(rollout_steps=13),
    "widen+merge": dict(widen=0.5, merge_siblings=True),
    "widen+merge, rollout-to-end": dict(widen=0.5, merge_siblings=True, rollout_steps=13),
    "widen+merge, rollout-to-end, T=0.6": dict(widen=0.5, merge_siblings=True, rollout_steps=13, temperature=0.6),
    "widen+merge, rollout-to-end, T=0.4": dict(widen=0.5, merge_siblings=True, rollout_steps=13, temperature=0.4),
    # round 4 (tests/unit/test_search_units.py pins BEST_FIRST's cache name)
    "best-first": dict(BEST_FIRST),
    "best-first, c=0.1": {**BEST_FIRST, "c_uct": 0.1},
    "best-first, T=1.0": {**BEST_FIRST, "temperature": 1.0},
    "best-first, branch 2": {**BEST_FIRST, "branch": 2},
}
"""the MCTS configurations the long_dev selection of bench/search_tau.py chooses among, in its tie order"""


def mcts_config(overrides: dict | None = None) -> dict:
    """MCTS_DEFAULT with `overrides` on top (what a benchmark records as its MCTS config)."""
    return {**MCTS_DEFAULT, **(overrides or {})}


def mcts_tag(cfg: dict) -> str:
    """Cache-key suffix of an MCTS config ('' for the default; knobs at their earlier values add nothing, so
    earlier cached points stay valid)."""
    ref = {**MCTS_DEFAULT, **MCTS_MORE}
    c = {**ref, **cfg}
    if c == ref:
        return ""
    tag = f"-r{c['rollout_steps']}-w{c['widen']:g}-m{int(c['merge_siblings'])}-t{c['temperature']:g}"
    for key, mark in (("branch", "b"), ("c_uct", "c"), ("select", ""), ("max_iterations", "i"), ("widen_gate", "g"),
                      ("max_expansions", "x")):   # only where a config moved them from their earlier value
        if c[key] != ref[key]:
            tag += f"-{mark}{c[key] if isinstance(c[key], str) else format(c[key], 'g')}"
    return tag


# ------------------------------------------------------------------ choices made on long_dev, read from file

TAU_SELECTION_NAME = "search_tau_selection.json"
"""early rejection's tau chosen on long_dev (written by bench/search_tau.py into the results folder)"""
MCTS_SELECTION_NAME = "search_mcts_selection.json"
"""MCTS's config and budget chosen on long_dev for the shipped gym PRM (bench/search_tau.py --what mcts)"""


def mcts_selection_name(prm: str = "") -> str:
    """The long_dev MCTS selection file of a reward model ('' = the shipped gym PRM)."""
    return MCTS_SELECTION_NAME if not prm else MCTS_SELECTION_NAME.replace(".json", f"_{Path(prm).name}.json")


def chosen_tau(results: Path) -> tuple[int, str]:
    """Early rejection's tau as chosen on long_dev (`results`/TAU_SELECTION_NAME), else the default 4; and
    where it came from."""
    sel = Path(results) / TAU_SELECTION_NAME
    if sel.exists():
        data = json.loads(sel.read_text())
        return int(data["chosen_tau"]), f"chosen on long_dev ({sel.name}): {data['rule']}"
    return 4, "default (no long_dev selection on file)"


def chosen_mcts(results: Path, prm: str = "") -> dict:
    """MCTS's token budget, config and config name chosen on long_dev for reward model `prm` ('' = the shipped
    PRM; a reward model without a selection of its own takes the shipped PRM's); defaults 400, {}, 'rest-mcts'
    when none is on file. Keys: budget, config, config_name, source."""
    sel = Path(results) / mcts_selection_name(prm)
    if not sel.exists():
        sel = Path(results) / mcts_selection_name()
    chosen = json.loads(sel.read_text()) if sel.exists() else {}
    return {"budget": int(chosen.get("chosen_budget", 400)), "config": chosen.get("chosen_config", {}),
            "config_name": chosen.get("chosen_config_name", "rest-mcts"),
            "source": f"chosen on long_dev ({sel.name})" if sel.exists() else "default"}
