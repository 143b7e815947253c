"""Each search strategy and both CLI commands on the shipped gym policy, in seconds."""

from __future__ import annotations

import json

import pytest

from prmkit.gym.task import make_split
from prmkit.gym.checker_rm import GymCheckerRM
from prmkit.search import SEARCHES, SearchParams

PROBLEMS = make_split("test", 3)
FAST = dict(n=4, beam_width=2, tau=3, max_step_tokens=16, max_steps=8, max_new_tokens=96, token_budget=150,
            max_iterations=8, lookahead=0)


pytestmark = pytest.mark.usefixtures("one_thread")  # (tests/conftest.py)


@pytest.mark.parametrize("method", sorted(SEARCHES))
def test_each_strategy_runs_and_accounts(gym_policy, method, tmp_path):
    from prmkit.schema import read_traces, write_records

    run = SEARCHES[method](PROBLEMS, gym_policy, GymCheckerRM(flip_rate=0.1), SearchParams(**FAST))
    assert len(run.results) == len(PROBLEMS)
    for r in run.results:
        assert r.solutions and 0 <= r.chosen < len(r.solutions) and r.policy_tokens > 0
    assert run.compute.policy_tokens == sum(r.policy_tokens for r in run.results)
    assert run.compute.policy_forward_tokens >= run.compute.policy_tokens
    assert run.compute.flops == 2 * gym_policy.num_parameters * run.compute.policy_tokens  # the checker costs 0
    write_records(tmp_path / "t.jsonl", run.to_traces())
    traces = read_traces(tmp_path / "t.jsonl")
    assert sum(t.meta["selected"] for t in traces) == len(PROBLEMS)


def test_beam_lookahead_and_dedup_run(gym_policy):
    run = SEARCHES["beam"](PROBLEMS, gym_policy, GymCheckerRM(), SearchParams(**{**FAST, "lookahead": 1, "dedup": True}))
    plain = SEARCHES["beam"](PROBLEMS, gym_policy, GymCheckerRM(), SearchParams(**FAST))
    assert run.compute.policy_tokens > plain.compute.policy_tokens   # lookahead tokens are counted


def test_mcts_respects_its_token_budget(gym_policy):
    p = SearchParams(**{**FAST, "token_budget": 60, "branch": 2, "rollout_steps": 1})
    run = SEARCHES["mcts"](PROBLEMS, gym_policy, GymCheckerRM(), p)
    # a problem stops expanding once over budget: at most one iteration (branch x step + rollout step)
    # plus one greedy completion (only when nothing finished) past it
    for r in run.results:
        assert r.policy_tokens <= 60 + 2 * 16 + 16 + 96
        assert r.meta["tree"][0]["parent"] == -1


def _cli(*args):
    from typer.testing import CliRunner

    from prmkit.cli import _register, app

    _register()
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.stdout


def test_cli_search_and_pav(tmp_path):
    out = _cli("search", "--method", "beam", "--prm", "checker", "--flip-rate", "0.1", "--split", "test",
               "--num-problems", "3", "--n", "4", "--max-step-tokens", "16", "--max-steps", "8", "--out",
               str(tmp_path / "s"), "--threads", "1")
    assert "beam: accuracy" in out
    res = json.loads((tmp_path / "s" / "results.json").read_text())
    assert res["problems"] == 3 and res["policy_tokens"] > 0 and "flops" in res
    _cli("search", "--method", "dvts", "--prm", "checker", "--prover", "checker", "--pav-alpha", "0.5", "--split",
         "test", "--num-problems", "2", "--n", "2", "--beam-width", "2", "--max-step-tokens", "16", "--max-steps", "8",
         "--out", str(tmp_path / "pav"), "--threads", "1")
    assert (tmp_path / "pav" / "traces.jsonl").exists()


def test_cli_search_takes_every_search_param(tmp_path):
    """`prmkit search` exposes each SearchParams knob with the library's own doc, passes it through,
    and rejects a bad value with the library's error."""
    from dataclasses import fields

    from prmkit.errors import InputError
    from prmkit.search import SearchParams

    helptext = _cli("search", "--help")
    for f in fields(SearchParams):
        assert "--" + f.name.replace("_", "-") in helptext, f.name
    assert "V_rollout" in helptext  # rollout_alpha's doc, written only in SearchParams
    _cli("search", "--method", "mcts", "--prm", "checker", "--split", "test", "--num-problems", "2", "--token-budget",
         "60", "--rollout-alpha", "0.25", "--max-step-tokens", "16", "--max-steps", "8", "--out", str(tmp_path / "m"),
         "--threads", "1")
    res = json.loads((tmp_path / "m" / "results.json").read_text())
    assert res["params"]["rollout_alpha"] == 0.25 and res["params"]["token_budget"] == 60
    assert json.loads((tmp_path / "m" / "config.json").read_text())["rollout_alpha"] == 0.25
    with pytest.raises(InputError, match="n >= 1"):
        _cli("search", "--n", "0", "--out", str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()


def test_cli_eval_search_writes_report(tmp_path):
    out = _cli("eval-search", "--prm", "checker", "--split", "test", "--num-problems", "3", "--methods",
               "best_of_n,beam", "--ns", "1,2", "--seeds", "0,1", "--max-step-tokens", "16", "--max-steps", "8",
               "--max-new-tokens", "96", "--temperatures", "0.8", "--out", str(tmp_path / "e"))
    assert "report:" in out
    curves = json.loads((tmp_path / "e" / "curves.json").read_text())["curves"]
    assert sorted(curves) == ["beam", "best_of_n"] and [r["n"] for r in curves["beam"]] == [1, 2]
    assert all(len(r["seeds"]) == 2 for r in curves["beam"])
    assert "data:image/png;base64" in (tmp_path / "e" / "report.html").read_text()


@pytest.mark.parametrize("method", ["beam", "early_reject"])
def test_with_the_shipped_gym_prm(gym_policy, method):
    from prmkit.rewards import SHIPPED_PRM_DIR, default_gym_prm

    if not (SHIPPED_PRM_DIR / "prmkit_rm.json").exists():
        pytest.skip("the gym PRM is not shipped in this checkout")
    rm = default_gym_prm()
    run = SEARCHES[method](PROBLEMS[:2], gym_policy, rm, SearchParams(**{**FAST, "tau": 2}))
    assert run.compute.prm_tokens > 0 and run.compute.prm_parameters == rm.num_parameters
    c = run.compute
    assert 0 < c.prm_uncached_tokens < c.prm_tokens      # candidates share their parents' prefixes
    assert c.flops == 2 * (gym_policy.num_parameters * c.policy_tokens + rm.num_parameters * c.prm_uncached_tokens)
    assert c.flops_with_prefill == 2 * (gym_policy.num_parameters * c.policy_forward_tokens
                                        + rm.num_parameters * c.prm_tokens)
    assert all(0.0 <= x <= 1.0 for r in run.results for s in r.solutions for x in s.step_scores)


def test_sweep_caches_points_and_keys_early_rejection_by_tau(gym_policy, tmp_path):
    """Cached points are reused (same values, nothing recomputed); early rejection's points are keyed by
    tau, so another tau is a new point while the other methods' points stay shared."""
    import prmkit.search.sweep as sweep_mod

    rm = GymCheckerRM(flip_rate=0.1)
    base = SearchParams(**{**FAST, "tau": 2})
    first = sweep_mod.sweep(PROBLEMS[:2], gym_policy, rm, ["beam", "early_reject"], [2], [0], base, cache=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["beam-2-s0.json", "early_reject-2-s0-tau2.json"]
    calls = gym_policy.stats.calls
    again = sweep_mod.sweep(PROBLEMS[:2], gym_policy, rm, ["beam", "early_reject"], [2], [0], base, cache=tmp_path)
    assert again == first and gym_policy.stats.calls == calls             # read back, not recomputed
    sweep_mod.sweep(PROBLEMS[:2], gym_policy, rm, ["early_reject"], [2], [0], SearchParams(**{**FAST, "tau": 3}),
                    cache=tmp_path)
    assert (tmp_path / "early_reject-2-s0-tau3.json").exists() and len(list(tmp_path.iterdir())) == 3


def test_beam_with_the_prm_kv_cache_equals_beam_without(gym_policy):
    """The key/value prefix cache changes what the PRM runs, not what search finds."""
    from prmkit.search.run import make_reward_model

    p = SearchParams(**{**FAST, "n": 4, "beam_width": 2})
    plain = SEARCHES["beam"](PROBLEMS, gym_policy, make_reward_model("", device="cpu"), p)
    cached = SEARCHES["beam"](PROBLEMS, gym_policy, make_reward_model("", device="cpu", kv_cache=200_000), p)
    assert [r.answer for r in cached.results] == [r.answer for r in plain.results]
    assert [[s.score for s in r.solutions] for r in cached.results] == \
        [[pytest.approx(s.score, abs=1e-5) for s in r.solutions] for r in plain.results]
    # without the cache every position is run; with it, about what a prefix-caching server runs
    assert plain.compute.prm_tokens > cached.compute.prm_tokens >= cached.compute.prm_uncached_tokens


def test_prm_kv_cache_on_a_model_without_one_is_a_clear_error():
    from prmkit.errors import InputError
    from prmkit.search.run import make_reward_model

    with pytest.raises(InputError, match="prm_kv_cache.*GymCheckerRM|GymCheckerRM.*key/value"):
        make_reward_model("checker", kv_cache=1000)


def test_cli_eval_search_sweeps_mcts_by_token_budget(tmp_path):
    """MCTS joins the sweep with a token budget of N x --mcts-tokens-per-n; the per-point knobs are not
    options; an unknown method is refused before anything is written."""
    from prmkit.errors import InputError

    from dataclasses import fields

    from prmkit.search import SearchParams
    from prmkit.search.run import SearchSources

    helptext = _cli("eval-search", "--help")
    shown = [f.name for f in fields(SearchParams) + fields(SearchSources) if f.name not in ("n", "seed", "token_budget")]
    for name in shown:   # every search knob and every problem / model option, as `prmkit search` has them
        assert "--" + name.replace("_", "-") in helptext, name
    assert "--mcts-tokens-per-n" in helptext
    assert "--n " not in helptext and "--seed " not in helptext and "--token-budget" not in helptext
    _cli("eval-search", "--prm", "checker", "--split", "test", "--num-problems", "3", "--methods", "mcts", "--ns",
         "1,3", "--seeds", "0", "--mcts-tokens-per-n", "20", "--max-step-tokens", "16", "--max-steps", "8",
         "--max-new-tokens", "96", "--rollout-steps", "0", "--out", str(tmp_path / "e"))
    res = json.loads((tmp_path / "e" / "curves.json").read_text())
    assert [r["n"] for r in res["curves"]["mcts"]] == [1, 3]
    cached = sorted(p.name for p in (tmp_path / "e" / "points").rglob("mcts-*.json"))
    assert cached == ["mcts-1x20-s0.json", "mcts-3x20-s0.json"]
    # a problem stops once its tokens reach the budget: at most one expansion (3 steps of <= 16 tokens) past it,
    # plus one greedy completion (<= 96 tokens) for a problem that finished no solution
    for r in res["points"]:
        assert r["policy_tokens_per_problem"] <= r["n"] * 20 + 3 * 16 + 96
    assert res["points"][0]["policy_tokens_per_problem"] < res["points"][1]["policy_tokens_per_problem"]
    with pytest.raises(InputError, match="unknown search method"):
        _cli("eval-search", "--methods", "beam,mtcs", "--out", str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()
