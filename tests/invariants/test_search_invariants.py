"""Search invariants on the shipped gym policy (acceptance 1) and batch independence."""

from __future__ import annotations

import pytest

from prmkit.gym.task import make_split
from prmkit.policy.base import SamplingParams
from prmkit.rewards.aggregate import aggregate
from prmkit.gym.checker_rm import GymCheckerRM
from prmkit.search import SEARCHES, SearchParams
from prmkit.search.base import derive_seed, prefix_text

LONG = make_split("long", 4)
SHORT = make_split("test", 4)
FAST = dict(max_step_tokens=24, max_steps=14, max_new_tokens=160)


pytestmark = pytest.mark.usefixtures("one_thread")  # (tests/conftest.py)


def test_beam_width_one_at_temperature_zero_is_greedy(gym_policy):
    run = SEARCHES["beam"](LONG, gym_policy, GymCheckerRM(), SearchParams(n=1, beam_width=1, temperature=0.0, **FAST))
    greedy = gym_policy.sample([p.prompt for p in LONG], SamplingParams(n=1, temperature=0.0, max_new_tokens=160))
    for r, g in zip(run.results, greedy):
        assert len(r.solutions) == 1 and r.chosen == 0
        assert r.solutions[0].steps == g[0].steps
    assert run.compute.policy_tokens == sum(len(g[0].token_ids) for g in greedy)


def test_best_of_one_is_the_single_sample(gym_policy):
    rm = GymCheckerRM(flip_rate=0.2)
    params = SearchParams(n=1, temperature=1.0, seed=3, **FAST)
    run = SEARCHES["best_of_n"](LONG, gym_policy, rm, params)
    for r in run.results:
        single = gym_policy.sample([r.problem.prompt], SamplingParams(n=1, temperature=1.0, max_new_tokens=160),
                                   seeds=[derive_seed(3, r.problem.id, "bon")])[0][0]
        assert r.chosen == 0 and r.solutions[0].steps == single.steps
        scores = GymCheckerRM(flip_rate=0.2).score([r.problem.prompt], [single.steps])[0]
        assert r.solutions[0].score == aggregate(scores, "min")


def _greedy_on_prm_chain(sampler, rm, problem, M: int, seed: int, tree: int, params: SearchParams):
    """Reference: one DVTS subtree written as a plain loop (sample M steps, keep the PRM's best)."""
    steps: list[str] = []
    for t in range(params.max_steps):
        last = t == params.max_steps - 1
        sp = SamplingParams(n=M, temperature=params.temperature, max_new_tokens=params.max_new_tokens if last
                            else params.max_step_tokens, stop=[] if last else ["\n"])
        comps = sampler.sample([prefix_text(problem.prompt, steps, "\n")], sp,
                               seeds=[derive_seed(seed, problem.id, "dvts", t, tree)])[0]
        cands = []
        for c in comps:
            new = [s for s in c.text.split("\n") if s.strip()] if last else ([c.text] if c.text.strip() else [])
            ended = last or c.stop is None or not c.text.strip()
            cands.append((steps + new, ended))
        scores = [aggregate(s, "min") if s else float("-inf") for s in
                  ([rm.score([problem.prompt], [c[0]])[0] if c[0] else [] for c in cands])]
        best = max(range(M), key=lambda k: (scores[k], -k))
        steps = cands[best][0]
        if cands[best][1]:
            return sorted(tuple(c[0]) for c in cands)
    raise AssertionError("the last round always ends a chain")


@pytest.mark.parametrize("n,m", [(3, 1), (4, 2)])
def test_dvts_is_independent_greedy_on_prm_chains(gym_policy, n, m):
    rm = GymCheckerRM(flip_rate=0.1)
    params = SearchParams(n=n, beam_width=m, temperature=1.0, seed=7, **FAST)
    run = SEARCHES["dvts"](SHORT[:3], gym_policy, rm, params)
    for r in run.results:
        ref = sorted(c for j in range(n // m) for c in _greedy_on_prm_chain(gym_policy, rm, r.problem, m, 7, j, params))
        assert sorted(tuple(s.steps) for s in r.solutions) == ref


@pytest.mark.parametrize("method", ["beam", "early_reject", "dvts", "mcts"])
def test_a_problem_does_not_depend_on_its_batch(gym_policy, method):
    params = SearchParams(n=4, beam_width=2, tau=3, seed=1, token_budget=200, max_iterations=6, **FAST)
    both = SEARCHES[method](SHORT[:3], gym_policy, GymCheckerRM(flip_rate=0.1), params)
    for i in range(3):  # every problem: a seed that depends on the batch may still draw the same steps for one
        alone = SEARCHES[method](SHORT[i:i + 1], gym_policy, GymCheckerRM(flip_rate=0.1), params)
        assert [s.steps for s in both.results[i].solutions] == [s.steps for s in alone.results[0].solutions], i
        assert both.results[i].policy_tokens == alone.results[0].policy_tokens, i


def test_early_reject_with_whole_steps_is_beam_search(gym_policy):
    params = SearchParams(n=4, beam_width=2, tau=24, seed=2, **FAST)
    rm = GymCheckerRM(flip_rate=0.1)
    b = SEARCHES["beam"](SHORT, gym_policy, rm, params)
    e = SEARCHES["early_reject"](SHORT, gym_policy, rm, params)
    for rb, re_ in zip(b.results, e.results):
        assert [s.steps for s in rb.solutions] == [s.steps for s in re_.solutions]
    assert b.compute.policy_tokens == e.compute.policy_tokens


def test_early_reject_counts_rejected_partial_steps(gym_policy):
    params = SearchParams(n=4, beam_width=4, tau=2, seed=2, **FAST)
    e = SEARCHES["early_reject"](SHORT[:3], gym_policy, GymCheckerRM(flip_rate=0.1), params)
    assert e.compute.policy_tokens == sum(r.policy_tokens for r in e.results)
    # every kept step is longer than tau, so tokens exceed what the finished solutions contain ...
    finished_chars = sum(len("\n".join(s.steps)) for r in e.results for s in r.solutions)
    assert e.compute.policy_tokens > finished_chars
