"""The key/value prefix store: what it keeps, LRU eviction, and scores through it equal to full forward
passes of the shipped PRM (its likelihood feature included) while running only the new tokens."""

from __future__ import annotations

import pytest
import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.lm.kv_prefix import Entry, KVPrefixStore, kept_lengths, prefix_hashes


def test_kept_lengths_by_hand():
    # 10 tokens, prompt ends at 3, steps end at 6 and 10: inner boundaries 3, 6, then every position of the last step
    assert kept_lengths(10, [3, 6, 10]) == [3, 6, 7, 8, 9, 10]
    assert kept_lengths(4, []) == [1, 2, 3, 4]


def test_store_finds_the_longest_kept_prefix_and_evicts_lru():
    s = KVPrefixStore(max_tokens=8)
    a = Entry([1, 2, 3, 4, 5], {})
    s.put(a, [2, 4, 5])                                    # keeps 2, 4, 5
    assert s.find([1, 2, 3, 4, 5, 6]) == (5, a)
    assert s.find([1, 2, 3, 9]) == (2, a)                  # 3 is inside an earlier step: not kept
    assert s.find([7, 8]) == (0, None)
    b = Entry([7, 8, 9, 10], {})
    s.put(b, [4])                                          # 9 tokens > 8: a (least recently used) goes
    assert s.tokens == 4 and s.find([1, 2, 3, 4, 5]) == (0, None)
    assert s.find([7, 8, 9, 10, 11]) == (4, b)
    assert prefix_hashes([5])[1] != prefix_hashes([6])[1]


@pytest.fixture(scope="module")
def prms():
    from prmkit.rewards import default_gym_prm

    full, cached = default_gym_prm(device="cpu"), default_gym_prm(device="cpu")
    cached.set_kv_cache(2_000)   # small: evictions happen below
    return full, cached


def test_cached_scores_equal_full_passes_and_run_only_new_tokens(prms):
    full, cached = prms
    probs = make_split("long", 4)
    sols = [parse_prompt(p.prompt).solution_steps() for p in probs]
    P = [p.prompt for p in probs]
    before = cached.stats.tokens_scored
    for k in range(1, 7):
        S = [s[:k] for s in sols]
        V = [s[:k - 1] + [s[k - 1][:-1] + "7"] for s in sols]        # a sibling: the last step altered
        want = full.score(P + P, S + V)
        got = cached.score(P + P, S + V)
        assert got == [pytest.approx(w, abs=1e-5) for w in want]
    assert cached.stats.tokens_scored - before < full.stats.tokens_scored / 2
    # one more step on the (kept) prefixes runs exactly the new step's tokens, counted from the encodings
    cached.kv_store.clear()
    cached.score(P, [s[:3] for s in sols])
    before = cached.stats.tokens_scored
    cached.score(P, [s[:4] for s in sols])
    grow = sum(len(cached.encode(p, s[:4]).input_ids) - len(cached.encode(p, s[:3]).input_ids) for p, s in zip(P, sols))
    assert cached.stats.tokens_scored - before == grow


def test_kv_cache_refuses_lm_token_readouts(char_tokenizer):
    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.rewards.readout import Readout
    from tests.unit.test_rm_readout import _tiny

    r = Readout("t", head="lm_tokens", sep="\n", good_token="+", bad_token="-")
    rm = DiscriminativePRM(_tiny("LlamaForCausalLM", char_tokenizer), char_tokenizer, readout=r)
    with pytest.raises(ValueError, match="classifier readouts only"):
        rm.set_kv_cache(1000)


def test_sampler_prompt_cache_gives_the_same_samples_and_prefills_less():
    """Prompts that extend kept prompts (search's rounds) sample the same tokens, with the same log-probs,
    as without the cache; the positions prefilled drop by the kept prefixes, counted from the prompts."""
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy

    plain = HFSampler.from_pretrained(default_policy(), device="cpu")
    cached = HFSampler.from_pretrained(default_policy(), device="cpu")
    cached.set_kv_cache(50_000)
    probs = make_split("long", 4)
    sols = [parse_prompt(p.prompt).solution_steps() for p in probs]
    for k in range(4):
        prompts = [p.prompt + "".join(s + "\n" for s in sol[:k]) for p, sol in zip(probs, sols)]
        for T in (0.0, 1.0):
            sp = SamplingParams(n=2, max_new_tokens=10, temperature=T, seed=k, stop=["\n"])
            f0, f1 = plain.stats.forward_tokens, cached.stats.forward_tokens
            a, b = plain.sample(prompts, sp), cached.sample(prompts, sp)
            for ga, gb in zip(a, b):
                for ca, cb in zip(ga, gb):
                    assert ca.token_ids == cb.token_ids
                    assert cb.logprobs == pytest.approx(ca.logprobs, abs=1e-4)
            if T == 0.0 and k:   # each prompt extends last round's by one step: last round's prompts are kept
                assert (plain.stats.forward_tokens - f0) - (cached.stats.forward_tokens - f1) == saved_round(
                    cached, prompts, old)
        old = prompts


def saved_round(sampler, prompts, old) -> int:
    """Prefill positions a round saves: each prompt's kept prefix is last round's prompt (all of it)."""
    return sum(len(sampler.encode_prompt(o)) for o in old)
