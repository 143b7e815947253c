"""Turn-level search reduces to plain rollouts: beam with N = 1, M = 1 at temperature 0 is the greedy
episode (look-ahead or not), and best-of-N's candidates are the rollout engine's N episodes."""

from __future__ import annotations

import pytest
import torch

from prmkit.agents.env import get_env_task
from prmkit.agents.hopgym import make_env, make_split
from prmkit.agents.hopgym.train_policy import AGENT_CHARS
from prmkit.agents.rollout import RolloutParams, rollout
from prmkit.agents.search import TurnSearchParams, beam_one, best_of_n, make_turn_rm
from prmkit.policy.hf import HFSampler


@pytest.fixture(scope="module")
def sampler():
    from transformers import LlamaForCausalLM

    from prmkit.gym.tokenizer import build_char_tokenizer
    from prmkit.gym.train_policy import model_config

    tok = build_char_tokenizer(AGENT_CHARS)
    torch.manual_seed(2)
    cfg = model_config(tok, 32, 2, 2, 1024)
    cfg.tie_word_embeddings = False  # a tied random head repeats the last input token: greedy actions would be empty
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 0.3)
    return HFSampler(model, tok, batch_size=64)


def _turns(ep):
    return [(t.action, t.observation) for t in ep.turns]


@pytest.mark.parametrize("lookahead", [0, 2])
def test_beam_1x1_at_temperature_0_is_the_greedy_episode(sampler, lookahead):
    task = get_env_task("hopgym")
    problems = make_split("dev", 3)
    greedy = rollout(sampler, problems, make_env, RolloutParams(k=1, max_turns=5, max_action_tokens=8,
                                                                temperature=0.0))
    p = TurnSearchParams(n=1, m=1, temperature=0.0, max_turns=5, max_action_tokens=8, lookahead=lookahead)
    rm = make_turn_rm("checker", task)
    for problem, (ep, _) in zip(problems, greedy):
        r = beam_one(sampler, task, problem, rm, p)
        assert len(r.candidates) == 1 and any(t.action for t in ep.turns)  # the greedy episode says something
        assert _turns(r.chosen) == _turns(ep) and r.chosen.finished == ep.finished and r.chosen.answer == ep.answer


def test_best_of_n_candidates_are_the_rollout_episodes(sampler):
    task = get_env_task("hopgym")
    problems = make_split("dev", 2)
    p = TurnSearchParams(n=3, max_turns=3, max_action_tokens=8, seed=5)
    results = best_of_n(sampler, task, problems, make_turn_rm("checker", task), p)
    plain = rollout(sampler, problems, make_env, RolloutParams(k=3, max_turns=3, max_action_tokens=8, seed=5))
    assert [[_turns(e) for e in r.candidates] for r in results] == [[_turns(e) for e, _ in plain[i * 3:(i + 1) * 3]]
                                                                   for i in range(2)]
    assert all(r.chosen is r.candidates[max(range(3), key=lambda j: (r.scores[j], -j))] for r in results)
