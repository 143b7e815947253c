"""Sampler invariants on the shipped gym policy: cached sampling equals teacher forcing, prefix
reuse changes nothing but the cost, seeds reproduce, batch company does not matter."""

from __future__ import annotations

import pytest
import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.policy.base import SamplingParams


def teacher_forced_logprobs(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1].float()  # (T-1, V)
    lp = torch.log_softmax(logits, -1)
    return lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]  # (T-1,)


def test_k8_prefix_continuations_match_teacher_forcing(gym_policy):
    problems = make_split("long", 3)
    # prefixes end inside the solution: the first two (correct) steps
    prefixes = [p.prompt + "\n".join(parse_prompt(p.prompt).solution_steps()[:2]) + "\n" for p in problems]
    params = SamplingParams(n=8, max_new_tokens=96, temperature=1.0, seed=3)
    before = gym_policy.stats.forward_tokens
    groups = gym_policy.sample(prefixes, params)
    reuse_tokens = gym_policy.stats.forward_tokens - before
    assert [len(g) for g in groups] == [8, 8, 8]
    worst = 0.0
    for prefix, group in zip(prefixes, groups):
        prefix_ids = gym_policy.encode_prompt(prefix)
        for c in group:
            tf = teacher_forced_logprobs(gym_policy.model, prefix_ids + c.token_ids)[len(prefix_ids) - 1:]
            worst = max(worst, float((tf - torch.tensor(c.logprobs)).abs().max()))
    assert worst < 1e-4
    # the same draws without reuse: identical samples, more forward tokens
    before = gym_policy.stats.forward_tokens
    again = gym_policy.sample(prefixes, params, share_prefix=False)
    no_reuse_tokens = gym_policy.stats.forward_tokens - before
    assert [[c.token_ids for c in g] for g in again] == [[c.token_ids for c in g] for g in groups]
    prefix_total = sum(len(gym_policy.encode_prompt(p)) for p in prefixes)
    assert no_reuse_tokens - reuse_tokens == 7 * prefix_total  # each prefix ran once instead of 8 times


def test_first_token_distribution_after_prefix_equals_full_forward(gym_policy):
    """The distribution the K continuations are drawn from is the full sequence's next-token one."""
    p = make_split("test", 1)[0]
    prefix = p.prompt + parse_prompt(p.prompt).solution_steps()[0] + "\n"
    ids = gym_policy.encode_prompt(prefix)
    logits, cache, mask, pos = gym_policy._prefill([ids])
    with torch.no_grad():
        full = gym_policy.model(torch.tensor([ids])).logits[0, -1].float()
    assert torch.allclose(torch.log_softmax(logits[0], -1), torch.log_softmax(full, -1), atol=1e-5)


def test_seeded_and_batch_independent(gym_policy):
    problems = make_split("test", 6)
    prompts = [p.prompt for p in problems]
    params = SamplingParams(n=3, max_new_tokens=64, seed=11)
    a = gym_policy.sample(prompts, params)
    b = gym_policy.sample(prompts, params)
    assert [[c.text for c in g] for g in a] == [[c.text for c in g] for g in b]
    seeds = [11 * 1_000_003 + i for i in range(6)]
    alone = gym_policy.sample(prompts[4:5], params, seeds=seeds[4:5])
    assert [c.text for c in alone[0]] == [c.text for c in a[4]]
    other = gym_policy.sample(prompts, SamplingParams(n=3, max_new_tokens=64, seed=12))
    assert [[c.text for c in g] for g in other] != [[c.text for c in g] for g in a]


def test_greedy_equals_generate(gym_policy):
    problems = make_split("long", 4)
    ours = gym_policy.sample([p.prompt for p in problems], SamplingParams(n=1, max_new_tokens=120, temperature=0))
    tok = gym_policy.tokenizer
    for p, g in zip(problems, ours):
        ids = torch.tensor([gym_policy.encode_prompt(p.prompt)])
        out = gym_policy.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                        max_new_tokens=120, pad_token_id=tok.pad_token_id)
        assert out[0, ids.size(1):].tolist() == g[0].token_ids


def test_stop_strings_end_a_step(gym_policy):
    p = make_split("test", 1)[0]
    res = gym_policy.sample([p.prompt], SamplingParams(n=4, max_new_tokens=40, stop=["\n"], seed=1))
    for c in res[0]:
        assert "\n" not in c.text and c.finish_reason == "stop" and c.stop == "\n"
        assert len(c.steps) == 1 and gym_policy.tokenizer.decode(c.token_ids).endswith("\n")


def test_top_p_tiny_is_greedy(gym_policy):
    p = make_split("test", 2)
    greedy = gym_policy.sample([q.prompt for q in p], SamplingParams(n=1, max_new_tokens=60, temperature=0))
    nucleus = gym_policy.sample([q.prompt for q in p], SamplingParams(n=2, max_new_tokens=60, top_p=1e-6, seed=5))
    for g, nu in zip(greedy, nucleus):
        assert all(c.token_ids == g[0].token_ids for c in nu)


def test_top_logprobs_are_the_teacher_forced_top_k(gym_policy):
    """`top_logprobs = k`: at each generated position, the k most likely ids of a full (cache-free)
    forward pass over prompt + the tokens so far, with their log-probabilities."""
    problems = make_split("test", 2)
    params = SamplingParams(n=2, max_new_tokens=24, temperature=1.0, seed=5, top_logprobs=3)
    groups = gym_policy.sample([p.prompt for p in problems], params)
    for p, group in zip(problems, groups):
        prompt_ids = gym_policy.encode_prompt(p.prompt)
        for c in group:
            ids = prompt_ids + c.token_ids
            with torch.no_grad():
                logits = gym_policy.model(torch.tensor([ids])).logits[0, len(prompt_ids) - 1:-1].float()
            lp = torch.log_softmax(logits, -1)                                   # (L, V)
            assert len(c.top_logprobs) == len(c.token_ids)
            for i, top in enumerate(c.top_logprobs):
                want_v, want_i = lp[i].topk(3)
                assert list(top) == want_i.tolist()
                assert list(top.values()) == pytest.approx(want_v.tolist(), abs=1e-4)
    # off by default
    assert gym_policy.sample([problems[0].prompt], SamplingParams(max_new_tokens=4))[0][0].top_logprobs is None
