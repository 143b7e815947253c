"""CALM and ReSeek credit on tiny batches worked by hand, their reductions to outcome baselines, and the
signals they read from hopgym episodes (subgoal verdicts, the agent's judgements, observation relevance)."""

from __future__ import annotations

import math

import pytest
import torch

from prmkit.agents.credit import TurnBatch, compute_turn_advantages
from prmkit.agents.credit.methods import reseek_rewards
from prmkit.agents.env import Episode, Turn
from prmkit.errors import InputError

T = torch.tensor
NAN = float("nan")


def batch(outcomes, lengths, groups=None, **extra):
    n = max(lengths)
    mask = torch.tensor([[t < L for t in range(n)] for L in lengths])
    return TurnBatch(outcomes=T(outcomes, dtype=torch.float32),
                     groups=T(groups if groups is not None else [0] * len(lengths)), turn_mask=mask, **extra)


def test_calm_by_hand():
    b = batch([1, 0, 0], [2, 2, 1], subgoals=T([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    a = compute_turn_advantages("calm", b, coef=0.1)
    # returns: ep0 [0.1 + 1, 1]; ep1 [0.2, 0.1]; ep2 [0]. Whole-episode returns 1.1, 0.2, 0.0
    base = [(0.2 + 0.0) / 2, (1.1 + 0.0) / 2, (1.1 + 0.2) / 2]  # leave-one-out means
    want = [[1.1 - base[0], 1.0 - base[0]], [0.2 - base[1], 0.1 - base[1]], [0.0 - base[2], 0.0]]
    assert torch.allclose(a, T(want), atol=1e-6)


def test_reseek_rewards_every_branch_by_hand():
    # ep0 right: Yes (+p), No on a relevant observation (n), No on an irrelevant one (+0.2p)
    # ep1 wrong: Yes relevant (n/2), Yes irrelevant (n), not judged (0)
    # ep2 wrong, judged on a padded turn only: nothing counts
    judge = T([[1.0, 0.0, 0.0], [1.0, 1.0, NAN], [NAN, 1.0, 1.0]])
    rel = T([[0.9, 0.5, 0.49], [0.7, 0.1, 1.0], [0.0, 0.0, 0.0]])
    mask = T([[True, True, True], [True, True, True], [True, False, False]])
    p, n = 0.1, -0.05
    r = reseek_rewards(T([1.0, 0.0, 0.0]), mask, judge, rel, p=p, n=n, tau=0.5)
    assert r.tolist() == pytest.approx([1 + p + n + 0.2 * p, 0 + n / 2 + n, 0.0], abs=1e-7)
    b = TurnBatch(T([1.0, 0.0, 0.0]), T([0, 0, 0]), mask, self_judge=judge, relevance=rel)
    a = compute_turn_advantages("reseek", b)
    shaped = [1 + p + n + 0.2 * p, n / 2 + n, 0.0]
    mean = sum(shaped) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in shaped) / 2)
    assert a[0].tolist() == pytest.approx([(shaped[0] - mean) / (std + 1e-6)] * 3, abs=1e-5)
    assert a[2].tolist() == pytest.approx([(shaped[2] - mean) / (std + 1e-6), 0.0, 0.0], abs=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_calm_and_reseek_reduce_to_outcome_baselines(seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 5, (8,), generator=g).tolist()
    n = max(lengths)
    judge = torch.randint(0, 3, (8, n), generator=g).float()
    judge[judge == 2] = NAN
    b = batch(torch.randint(0, 2, (8,), generator=g).tolist(), lengths, groups=[i // 4 for i in range(8)],
              subgoals=(torch.rand(8, n, generator=g) > 0.5).float(), self_judge=judge,
              relevance=torch.rand(8, n, generator=g))
    assert torch.allclose(compute_turn_advantages("calm", b, coef=0.0), compute_turn_advantages("rloo", b), atol=1e-6)
    assert torch.equal(compute_turn_advantages("reseek", b, p=0.0, n=0.0), compute_turn_advantages("grpo", b))
    assert not torch.allclose(compute_turn_advantages("calm", b), compute_turn_advantages("rloo", b))


def test_reseek_without_judgements_is_refused():
    with pytest.raises(InputError, match="self_judge"):
        compute_turn_advantages("reseek", batch([1, 0], [1, 1], relevance=T([[1.0], [0.0]])))
    from prmkit.agents.env import get_env_task
    from prmkit.agents.judges import check_env

    from prmkit.agents.rl import AgentRLConfig

    with pytest.raises(InputError, match="judgement.*hopgym"):
        check_env(AgentRLConfig(method="reseek"), get_env_task("hopgym"))


@pytest.mark.parametrize("kw,field,gold", [
    (dict(method="attributed"), "judge_model", "useful"), (dict(method="calm"), "judge_model", "progress"),
    (dict(method="pure"), "turn_rm", "wrong"), (dict(method="hybrid"), "turn_rm", "wrong"),
    (dict(method="spa"), "grounding", "valid")])
def test_gold_standins_are_refused_on_an_environment_without_gold(tmp_path, kw, field, gold):
    """A user's environment without per-turn gold: the exact judge, checker and grounding bonus that stand in
    for a model would read every turn as 0; the run stops before any model loads (the model path is absent)."""
    import dataclasses

    from prmkit.agents.calc_env import calc_task
    from prmkit.agents.env import ENV_TASKS
    from prmkit.agents.rl import AgentRLConfig, AgentRLRun

    ENV_TASKS["calc-nogold"] = lambda: dataclasses.replace(calc_task(), name="calc-nogold", gold=None)
    try:
        cfg = AgentRLConfig(out=str(tmp_path / "run"), env="calc-nogold", model=str(tmp_path / "absent"), **kw)
        with pytest.raises(InputError, match=f"no per-turn gold.*{gold}=0") as e:
            AgentRLRun(cfg)
        assert e.value.field == field and not (tmp_path / "run").exists()
        ok = {"judge_model": dict(judge_model=str(tmp_path / "judge")), "turn_rm": None,
              "grounding": dict(grounding=0.0)}[field]
        if ok is not None:   # the model that replaces the gold, or the bonus off: this check passes
            from prmkit.agents.judges import check_env

            check_env(AgentRLConfig(env="calc-nogold", **kw, **ok), ENV_TASKS["calc-nogold"]())
    finally:
        ENV_TASKS.pop("calc-nogold")


def test_a_turn_without_the_gold_field_is_named():
    from prmkit.agents import signals
    from prmkit.agents.env import Episode, Turn

    ep = Episode(problem_id="p7", prompt="Q", turns=[Turn("C:1+1", "O:2", gold={"useful": True}),
                                                     Turn("A:2", "", gold={})], finished=True, outcome=1.0)
    assert signals.gold_flags([ep], "useful").tolist() == [[1.0, 0.0]]
    with pytest.raises(InputError, match="episode p7, turn 1: .*lacks `useful`") as e:
        signals.gold_flags([ep], "useful", required=True)
    assert e.value.field == "gold.useful"


def test_hopgym_signals_by_hand():
    from prmkit.agents import signals
    from prmkit.agents.env import get_env_task, run_episode
    from prmkit.agents.hopgym import make_problem, oracle_actions, world_of

    task = get_env_task("hopgym")
    problem = next(p for p in (make_problem("dev", i) for i in range(50))
                   if len(world_of(p)[1].gold_facts) >= 2)
    world, question = world_of(problem)
    facts = question.gold_facts
    first = facts[0]
    lookup = f"S:{first[0]} {first[1]}"
    actions = [lookup, lookup, "S:Z99 age"] + oracle_actions(world, question)[1:]
    prompt, turns, finished = run_episode(task.make_env(problem), actions)
    ep = Episode(problem.id, prompt, turns, finished, answer=turns[-1].action[2:])
    for t, gt in zip(ep.turns, task.gold(problem, [t.action for t in turns])):
        t.gold = gt
    signals.attach_turn_extras(task, problem, ep)
    # the repeated lookup still shows a needed fact; the made-up name shows nothing; the answer turn nothing
    rel = ep.meta["relevance"]
    assert rel[:3] == [1.0, 1.0, 0.0] and rel[-1] == 0.0
    sub = signals.subgoal_flags([ep])[0].tolist()
    # subgoals: the first reveal of each needed fact; repeats, the bad lookup and the answer achieve none
    assert sub[:3] == [1.0, 0.0, 0.0] and sum(sub) == len(facts) and sub[-1] == 0.0
    assert signals.self_judgements([ep]) is None
    ep.meta["judgements"] = [True, None, False] + [None] * (len(turns) - 3)
    cut = Episode("x", "", [Turn("S:Z99 age", "O:none")], False, meta={"judgements": [True]})
    sj = signals.self_judgements([ep, cut])
    assert sj[0, :3].tolist()[0] == 1.0 and math.isnan(sj[0, 1]) and sj[0, 2] == 0.0
    assert math.isnan(sj[1, 0])  # an episode without a final answer counts as not judged


def test_noisy_judge_flips_at_its_rate_and_reproducibly():
    from prmkit.agents.judges import flip

    v = (torch.arange(4000) % 3 == 0).float()
    assert torch.equal(flip(v, 0.0, 1), v) and torch.equal(flip(v, 1.0, 1), 1 - v)
    noisy = flip(v, 0.2, 7)
    assert torch.equal(noisy, flip(v, 0.2, 7)) and not torch.equal(noisy, flip(v, 0.2, 8))
    share = float((noisy != v).float().mean())
    assert 0.17 < share < 0.23  # 800 expected flips of 4000, sd about 25
