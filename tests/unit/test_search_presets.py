"""The library pieces the search benchmarks share: presets and the long_dev selections on file, the point
cache and its key names, and the matched-compute comparison read from cached points."""

from __future__ import annotations

import json
import math

import pytest

from prmkit.search.compare import matched_candidates, mcts_vs_greedy, tokens_to_reach
from prmkit.search.presets import (
    BEST_FIRST,
    MCTS_CONFIGS,
    MCTS_DEFAULT,
    chosen_mcts,
    chosen_tau,
    mcts_config,
    mcts_selection_name,
    mcts_tag,
)
from prmkit.search.sweep import cached_points, mcts_point_tag, point_tag, temperature_tag


def test_point_keys_are_the_names_of_the_cached_files():
    # the names under bench/results/search_points/ (bench/search.py --only-cached reads them back)
    assert point_tag("best_of_n", 16, 2) == "best_of_n-16-s2"
    assert point_tag("beam", 4, 0, tau=3) == "beam-4-s0"              # only early rejection reads tau
    assert point_tag("early_reject", 16, 1, tau=3) == "early_reject-16-s1-tau3"
    assert mcts_point_tag(4, 64, 0) == "mcts-4x64-s0"
    assert temperature_tag(0.6, 0.9, 4, 0) == "temp-0.6-topp-0.9-n4-s0"


def test_cached_points_computes_once_and_only_cached_computes_nothing(tmp_path):
    calls = []

    def fn():
        calls.append(1)
        return [{"accuracy": 0.5}]

    assert cached_points(tmp_path, "k", fn) == [{"accuracy": 0.5}]
    assert cached_points(tmp_path, "k", fn) == [{"accuracy": 0.5}] and len(calls) == 1   # read back
    assert json.loads((tmp_path / "k.json").read_text()) == [{"accuracy": 0.5}]
    assert cached_points(tmp_path, "missing", fn, only_cached=True) == [] and len(calls) == 1
    assert not (tmp_path / "missing.json").exists()
    assert cached_points(None, "k", fn) == [{"accuracy": 0.5}] and len(calls) == 2      # no cache: always computed


def test_presets_fill_the_default_and_keep_their_cache_names():
    assert mcts_config(None) == MCTS_DEFAULT and mcts_config({"branch": 2})["branch"] == 2
    assert mcts_config(BEST_FIRST)["rollout_steps"] == 0 and mcts_config(BEST_FIRST)["branch"] == MCTS_DEFAULT["branch"]
    assert list(MCTS_CONFIGS)[0] == "rest-mcts" and mcts_tag(mcts_config(MCTS_CONFIGS["rest-mcts"])) == ""
    assert mcts_tag(MCTS_CONFIGS["best-first, branch 2"]) == "-r0-w0-m1-t0.8-b2-c0-argmax-i400-g0.5-x8"


def test_selections_on_file_are_read_with_their_source(tmp_path):
    assert chosen_tau(tmp_path) == (4, "default (no long_dev selection on file)")
    assert chosen_mcts(tmp_path) == {"budget": 400, "config": {}, "config_name": "rest-mcts", "source": "default"}
    (tmp_path / "search_tau_selection.json").write_text(json.dumps({"chosen_tau": 3, "rule": "r"}))
    assert chosen_tau(tmp_path) == (3, "chosen on long_dev (search_tau_selection.json): r")
    shipped = {"chosen_budget": 2000, "chosen_config": {"widen": 0.5}, "chosen_config_name": "w"}
    (tmp_path / "search_mcts_selection.json").write_text(json.dumps(shipped))
    # a reward model without a selection of its own takes the shipped PRM's
    assert chosen_mcts(tmp_path, "bench/models/strong_verifier") == {
        "budget": 2000, "config": {"widen": 0.5}, "config_name": "w", "source": "chosen on long_dev (search_mcts_selection.json)"}
    assert mcts_selection_name("bench/models/strong_verifier") == "search_mcts_selection_strong_verifier.json"
    (tmp_path / mcts_selection_name("x/sv")).write_text(json.dumps({**shipped, "chosen_budget": 1000}))
    assert chosen_mcts(tmp_path, "x/sv")["budget"] == 1000


def test_tokens_to_reach_sorts_points_by_tokens():
    rows = [{"policy_tokens_per_problem": 400, "accuracy": 0.5}, {"policy_tokens_per_problem": 100, "accuracy": 0.3}]
    # 0.4 is half-way from 0.3 to 0.5: the geometric mean of 100 and 400
    assert tokens_to_reach(rows, 0.4) == pytest.approx(math.sqrt(100 * 400))
    assert tokens_to_reach(rows, 0.2) == 100       # the first point already reaches it
    assert tokens_to_reach(rows, 0.6) is None


def test_mcts_vs_greedy_reads_cached_points_and_matches_tokens(tmp_path):
    from prmkit.search import SearchParams

    def point(acc, tokens, flops, problems=10, ef=None):
        return [{"accuracy": acc, "policy_tokens_per_problem": tokens, "flops_per_problem": flops, "problems": problems,
                 "error_free_accuracy": ef}]

    # greedy decoding 30 tokens; MCTS seed 0 at 95 tokens -> M = round(95 / 30) = 3, seed 1 at 50 -> M = 2
    files = {"greedy-t0": point(0.3, 30, 1.0), "mcts-b100-s0": point(0.6, 95, 9.0, ef=0.5),
             "mcts-b100-s1": point(0.4, 50, 5.0, ef=0.3), "prm-greedy-m3-s0": point(0.5, 90, 8.0, ef=0.4),
             "prm-greedy-m2-s1": point(0.5, 60, 6.0)}
    for key, pts in files.items():
        (tmp_path / f"{key}.json").write_text(json.dumps(pts))
    res = mcts_vs_greedy([], None, None, SearchParams(), 100, [0, 1], None, tmp_path, only_cached=True)
    assert matched_candidates(95, 30) == 3 and matched_candidates(10, 30) == 1
    assert res["greedy_same_budget_candidates_per_step"] == [3, 2]
    assert res["mcts_accuracy"] == pytest.approx(0.5) and res["greedy_accuracy_same_budget"] == pytest.approx(0.5)
    assert res["mcts_solved_per_seed"] == [6, 4] and res["greedy_decoding_solved"] == 3
    assert res["mcts_beats_greedy_same_budget"] is False       # 10 solved against 10
    assert res["mcts_beats_greedy_decoding"] is True           # 10 against 3 x 2 seeds
    assert res["mcts_error_free_accuracy"] == pytest.approx(0.4)
    assert res["greedy_same_budget_error_free_accuracy"] is None   # one point lacks it
    assert res["mcts_config"] == MCTS_DEFAULT and res["mcts_seeds"] == [0, 1]
    # a seed whose points are missing is left out; none at all gives {}
    assert mcts_vs_greedy([], None, None, SearchParams(), 100, [0, 7], None, tmp_path, True)["mcts_seeds"] == [0]
    assert mcts_vs_greedy([], None, None, SearchParams(), 999, [0], None, tmp_path, True) == {}
