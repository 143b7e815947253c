"""Scoring invariants: a trace's step scores do not depend on the batch size or on its batch
neighbours (float32, 1e-5); one pass over the whole trace equals scoring each prefix alone; the
implicit PRM equals a brute-force per-token reference."""

from __future__ import annotations

import random

import pytest
import torch

from prmkit.gym.task import make_split, parse_prompt

TOL = 1e-5


def _traces(n: int = 8, seed: int = 0):
    """Gym prompts with right and corrupted solutions of different lengths (2-9 steps)."""
    rng = random.Random(seed)
    probs = make_split("long_dev", n // 2) + make_split("dev", n - n // 2)
    prompts, steps = [], []
    for p in probs:
        sol = parse_prompt(p.prompt).solution_steps()
        if rng.random() < 0.5:
            k = rng.randrange(len(sol) - 1)
            sol[k] = sol[k][:-1] + str((int(sol[k][-1]) + 1) % 10)
        prompts.append(p.prompt)
        steps.append(sol[: rng.randint(1, len(sol))])
    return prompts, steps


@pytest.fixture(scope="module")
def prm():
    from prmkit.resolve import default_policy
    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.train.silence import quiet_transformers

    torch.manual_seed(0)
    with quiet_transformers():
        return DiscriminativePRM.from_pretrained(default_policy(), readout="trl")


@pytest.fixture(scope="module")
def prm_ll(prm):
    """The PRM with the step log-likelihood feature (a frozen policy LM) added to its head."""
    from transformers import AutoModelForCausalLM

    from prmkit.resolve import default_policy
    from prmkit.rewards.discriminative import DiscriminativePRM

    return DiscriminativePRM(prm.model, prm.tokenizer, readout="trl",
                             loglik_lm=AutoModelForCausalLM.from_pretrained(default_policy()),
                             loglik={"lm": "gym-policy", "weight": 0.7, "bias": 1.0})


@pytest.fixture(scope="module")
def implicit():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prmkit.resolve import default_policy
    from prmkit.rewards.implicit import ImplicitPRM

    path = default_policy()
    model = AutoModelForCausalLM.from_pretrained(path)
    torch.manual_seed(1)
    with torch.no_grad():  # a trained model differs from its reference: perturb it
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return ImplicitPRM(model, AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path),
                       beta=1.0, cache_size=0)


def _max_diff(a, b) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


@pytest.mark.parametrize("which", ["prm", "implicit", "prm_ll"])
def test_scores_do_not_depend_on_batch_size_or_neighbours(which, prm, implicit, prm_ll):
    rm = {"prm": prm, "implicit": implicit, "prm_ll": prm_ll}[which]
    prompts, steps = _traces()
    rm.batch_size = 64
    full = rm.score(prompts, steps)
    assert [len(s) for s in full] == [len(s) for s in steps]
    rm.batch_size = 1
    alone = rm.score(prompts, steps)
    rm.batch_size = 3
    order = list(range(len(prompts)))
    random.Random(5).shuffle(order)
    shuffled = rm.score([prompts[i] for i in order], [steps[i] for i in order])
    unshuffled = [None] * len(order)
    for j, i in enumerate(order):
        unshuffled[i] = shuffled[j]
    rm.batch_size = 64
    assert _max_diff(full, alone) < TOL
    assert _max_diff(full, unshuffled) < TOL
    assert len({round(x, 4) for row in full for x in row}) > 5  # the scores are not all alike


@pytest.mark.parametrize("readout", ["trl", "token-classification", "trl+loglik"])
def test_one_pass_equals_scoring_each_prefix(readout, prm, prm_ll):
    from prmkit.rewards.readout import get_readout

    rm = prm_ll if readout == "trl+loglik" else replace_readout(prm, get_readout(readout))
    prompts, steps = _traces(4, seed=3)
    one_pass = rm.score(prompts, steps)
    for p, ss, row in zip(prompts, steps, one_pass):
        prefix_scores = [rm.score([p], [ss[: k + 1]])[0][-1] for k in range(len(ss))]
        assert prefix_scores == pytest.approx(row, abs=TOL)


def replace_readout(rm, readout):
    from prmkit.rewards.discriminative import DiscriminativePRM

    return DiscriminativePRM(rm.model, rm.tokenizer, readout=readout)


def test_implicit_matches_a_per_token_brute_force_reference(implicit):
    import math

    prompts, steps = _traces(4, seed=7)
    got = implicit.score(prompts, steps)
    tok = implicit.tokenizer
    for p, ss, row in zip(prompts, steps, got):
        text_ids = tok(p + "\n".join(ss))["input_ids"]         # BOS + prompt + steps joined by "\n"
        ids = torch.tensor([text_ids])
        with torch.no_grad():
            lp = torch.log_softmax(implicit.model(ids).logits[0].float(), -1)
            lr = torch.log_softmax(implicit.ref_model(ids).logits[0].float(), -1)
        n_prompt = len(tok(p)["input_ids"])
        q, pos, expect = 0.0, n_prompt, []
        for k, s in enumerate(ss):
            span = len(s) + (1 if k > 0 else 0)                   # char tokenizer; the separator joins the next step
            for t in range(pos, pos + span):
                q += float(lp[t - 1, text_ids[t]] - lr[t - 1, text_ids[t]])
            pos += span
            expect.append(1 / (1 + math.exp(-q)))                 # sigmoid(beta * q), beta = 1
        assert row == pytest.approx(expect, abs=1e-4)


def test_uncached_tokens_count_only_what_a_prefix_cache_misses(prm):
    """Scoring a prefix, then its one-step extension: the extension's uncached tokens are exactly the
    tokens its encoding adds (lengths from the tokenizer, not from the counter)."""
    prompts, steps = _traces(2, seed=3)
    p, s = prompts[0], steps[0]
    if len(s) < 2:
        s = s + ["1+1=2"]
    parent, child = s[:-1], s
    extra = len(prm.encode_many([p], [child])[0].input_ids) - len(prm.encode_many([p], [parent])[0].input_ids)
    prm.prefix_cache.clear()
    before = prm.stats.uncached_tokens
    prm.score([p], [parent])
    cold = prm.stats.uncached_tokens - before
    assert cold == len(prm.encode_many([p], [parent])[0].input_ids)
    prm.score([p], [child])
    assert prm.stats.uncached_tokens - before - cold == extra > 0
    prm.score([p], [child])                                      # the same sequence again: all cached
    assert prm.stats.uncached_tokens - before - cold == extra
