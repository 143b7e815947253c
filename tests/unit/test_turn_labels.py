"""MC turn values: continuations replay the prefix exactly, and a scripted policy gives hand-computed values."""

from __future__ import annotations

from prmkit.agents.env import Episode, get_env_task, run_episode
from prmkit.agents.hopgym import make_problem, oracle_actions, world_of
from prmkit.agents.rollout import RolloutParams, rollout
from prmkit.agents.turn_labels import mc_turn_labels, mc_turn_values
from prmkit.policy.base import Completion


class ScriptedSampler:
    """Always proposes the oracle's next action for the problem in its prompt (text path)."""

    def __init__(self, answers: dict[str, list[str]], wrong_after: int | None = None):
        self.answers, self.wrong_after = answers, wrong_after

    def sample(self, prompts, params, seeds=None):
        out = []
        for p in prompts:
            q, *done = [line for line in p.split("\n") if line]
            acted = [line for line in done if not line.startswith("O:")]
            plan = self.answers[q + "\n"]
            nxt = plan[len(acted)] if len(acted) < len(plan) else "A:0"
            if self.wrong_after is not None and len(acted) >= self.wrong_after:
                nxt = "A:wrong"
            out.append([Completion(text=nxt, token_ids=[], logprobs=[], steps=[nxt], finish_reason="stop", stop="\n")])
        return out


def test_prefix_replay_and_mc_values_by_hand():
    task = get_env_task("hopgym")
    p = next(make_problem("dev", i) for i in range(50) if len(oracle_actions(*world_of(make_problem("dev", i)))) >= 3)
    plan = oracle_actions(*world_of(p))
    # a prefix replays exactly the given actions
    ep, _ = rollout(ScriptedSampler({p.prompt: plan}), [p], task.make_env, RolloutParams(k=1), prefixes=[plan[:1]])[0]
    assert [t.action for t in ep.turns] == plan and ep.finished and task.outcome(p, ep) == 1.0
    # an episode whose second turn goes wrong: from the prefix through turn 0 the oracle still wins
    actions = [plan[0], "S:X99 ceo", "A:wrong"]
    _, turns, finished = run_episode(task.make_env(p), actions)
    bad = Episode(problem_id=p.id, prompt=p.prompt, turns=turns, finished=finished, answer="wrong", outcome=0.0)
    values = mc_turn_values(ScriptedSampler({p.prompt: plan}), task, {p.id: p}, [bad], RolloutParams(k=2))
    # after turn 0 the scripted continuation re-plans from the number of actions taken, so it follows the plan
    assert values[0][0] == 1.0 and values[0][2] == 0.0
    never = mc_turn_values(ScriptedSampler({p.prompt: plan}, wrong_after=0), task, {p.id: p}, [bad],
                           RolloutParams(k=2))
    assert never[0] == [0.0, 0.0, 0.0]
    assert mc_turn_labels([0.5, 0.0, 1.0], k=2).values == [1.0, 0.0, 1.0]
    assert mc_turn_labels([0.5, 0.0, 1.0], k=2, mode="soft").values == [0.5, 0.0, 1.0]


def test_agent_sample_writes_mc_labels(tmp_path):
    import json

    from transformers import LlamaForCausalLM
    import torch

    from prmkit.agents.hopgym.train_policy import AGENT_CHARS
    from prmkit.agents.sample import AgentSampleConfig, run
    from prmkit.gym.tokenizer import build_char_tokenizer
    from prmkit.gym.train_policy import model_config

    tok = build_char_tokenizer(AGENT_CHARS)
    torch.manual_seed(0)
    model = LlamaForCausalLM(model_config(tok, 16, 1, 2, 1024))
    with torch.no_grad():
        model.lm_head.weight[tok.convert_tokens_to_ids("\n")] += 0.5
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    out = run(AgentSampleConfig(out=str(tmp_path / "s"), model=str(tmp_path / "m"), num_problems=2, k=2, max_turns=3,
                                labels="mc-soft", mc_k=2))
    rows = [json.loads(line) for line in (out / "turns.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert r["labels"]["method"] == "turn-mc-soft" and len(r["labels"]["values"]) == len(r["steps"])
        assert all(v in (0.0, 0.5, 1.0) for v in r["labels"]["values"])
