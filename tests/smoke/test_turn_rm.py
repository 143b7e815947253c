"""The turn reward-model pipeline end to end: turn traces of gym episodes (oracle trajectories with injected
errors, exact gold) -> train prm / orm with the single-turn trainers -> first-wrong-turn F1, AUROC, rank@1."""

from __future__ import annotations

import json
import random

from prmkit.agents.env import Episode, get_env_task, run_episode
from prmkit.agents.hopgym import make_problem, noisy_actions, world_of
from prmkit.agents.turn_rm import train_and_evaluate
from prmkit.agents.turns import episode_trace
from prmkit.schema import to_dict
from tests.smoke.test_agent_rl import tiny_agent  # noqa: F401  (fixture)


def _turn_traces(path, split, n, k):
    task, rng, rows = get_env_task("hopgym"), random.Random(split), []
    for i in range(n):
        p = make_problem(split, i)
        world, question = world_of(p)
        for _ in range(k):
            actions = noisy_actions(world, question, rng, p_error=0.5)
            prompt, turns, finished = run_episode(task.make_env(p), actions)
            e = Episode(problem_id=p.id, prompt=prompt, turns=turns, finished=finished,
                        answer=turns[-1].action[2:] if finished else None)
            e.outcome = task.outcome(p, e)
            for t, g in zip(e.turns, task.gold(p, [t.action for t in e.turns])):
                t.gold = g
            e.first_error = next((j for j, t in enumerate(e.turns) if t.gold["wrong"]), -1)
            rows.append(json.dumps(to_dict(episode_trace(e))))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def test_turn_rm_pipeline(tmp_path, tiny_agent):  # noqa: F811
    paths = {s: _turn_traces(tmp_path / s / "turns.jsonl", s, n, 2) for s, n in (("train", 8), ("dev", 6), ("test", 5))}
    res = train_and_evaluate(tiny_agent, paths, tmp_path, kinds=("prm", "orm", "implicit"))
    assert res["test_episodes"] == 10
    for kind in ("prm", "orm", "implicit"):
        assert 0.0 <= res[kind]["first_error_f1"] <= 1.0
        assert 0.0 <= res[kind]["bon_rank1"] <= 1.0
        assert res[kind]["auroc_vs_useful"] is None or 0.0 <= res[kind]["auroc_vs_useful"] <= 1.0
    assert set(res["bon_rank1"]) == {"prm", "orm"}
    again = train_and_evaluate(tiny_agent, paths, tmp_path, kinds=("prm", "orm", "implicit"))  # reused
    assert again["prm"]["first_error_f1"] == res["prm"]["first_error_f1"]
