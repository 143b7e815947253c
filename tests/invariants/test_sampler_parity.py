"""The device decode loop against the original host loop (re-implemented below from the sampler as it
was: per-step Python bookkeeping, per-row text and `str.endswith` stop checks, per-step generator draws):
on CPU the default loop gives bit-identical ids, text, finish reasons, log-probs and work counters on the
gym policy; the sync-free and static-cache loops give the same ids, text and finish reasons with
log-probs equal within float noise. A teacher-forced forward checks every loop's log-probs."""

from __future__ import annotations

import pytest
import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.policy.base import SamplingParams
from prmkit.policy.decode import DecodeOptions, teacher_forced_gap
from prmkit.policy.hf import HFSampler
from prmkit.resolve import default_policy

SYNC_FREE = DecodeOptions(compact=False, check_every=4)
STATIC = DecodeOptions(compact=False, static_cache=True)


def old_draw(logits, gens, rows, params, n):
    if params.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / params.temperature, -1)
    if params.top_p < 1.0:
        sp, idx = probs.sort(-1, descending=True)
        probs = torch.zeros_like(probs).scatter(-1, idx, sp * ((sp.cumsum(-1) - sp) < params.top_p))
    u = torch.cat([torch.rand(sum(1 for q in rows if q // n == p), generator=gens[p])
                   for p in sorted({r // n for r in rows})])       # each prompt's active rows, in row order
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf, (u * cdf[:, -1])[:, None]).squeeze(-1).clamp(max=probs.size(-1) - 1)


def old_sample(s: HFSampler, prompts, params, share_prefix=True):
    """The original `sample_ids` + `_decode`: returns per prompt [(ids, logprobs, tops, text, finish, stop)]
    and the (forward, generated) token counts of the call."""
    n, R = params.n, len(prompts) * params.n
    f0, g0 = s.stats.forward_tokens, s.stats.generated_tokens
    ids = [s.encode_prompt(p) for p in prompts]
    with torch.no_grad():
        if share_prefix:
            logits, cache, mask, pos = s._prefill(ids)
            logits = logits.repeat_interleave(n, 0)
            cache.batch_repeat_interleave(n)
            mask, pos = mask.repeat_interleave(n, 0), pos.repeat_interleave(n, 0)
        else:
            logits, cache, mask, pos = s._prefill([i for i in ids for _ in range(n)])
        seeds = [params.seed * 1_000_003 + i for i in range(len(prompts))]
        gens = [torch.Generator().manual_seed(x) for x in seeds]
        toks, lps, tops = [[] for _ in range(R)], [[] for _ in range(R)], [[] for _ in range(R)]
        texts, finish, stop = [""] * R, ["length"] * R, [None] * R
        rows, k = list(range(R)), params.top_logprobs
        stop_ids = {s._special_names[x]: x for x in params.stop if x in s._special_names}
        for _ in range(params.max_new_tokens):
            logp = torch.log_softmax(logits, -1)
            nxt = old_draw(logits, gens, rows, params, n)
            chosen = logp.gather(-1, nxt[:, None]).squeeze(-1).tolist()
            tv, ti = logp.topk(k, -1) if k else (None, None)
            keep = []
            for j, (r, t) in enumerate(zip(rows, nxt.tolist())):
                toks[r].append(t)
                lps[r].append(chosen[j])
                if k:
                    tops[r].append(dict(zip(ti[j].tolist(), tv[j].tolist())))
                if t == s.tokenizer.eos_token_id and not params.ignore_eos:
                    finish[r] = "stop"
                    continue
                if t in stop_ids:                                # a special-token stop: matched by id
                    finish[r], stop[r] = "stop", stop_ids[t]
                    continue
                texts[r] += s._pieces(t)
                hit = next((x for x in params.stop if texts[r].endswith(x)), None)
                if hit is not None:
                    finish[r], stop[r], texts[r] = "stop", hit, texts[r][: len(texts[r]) - len(hit)]
                    continue
                keep.append(j)
            s.stats.generated_tokens += len(rows)
            if not keep:
                break
            if len(keep) < len(rows):
                idx = torch.tensor(keep)
                cache.batch_select_indices(idx)
                nxt, mask, pos, rows = nxt[idx], mask[idx], pos[idx], [rows[j] for j in keep]
            mask, pos = torch.cat([mask, torch.ones_like(mask[:, :1])], -1), pos + 1
            out = s.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, use_cache=True,
                          **{s._cache_kw: cache})
            s.stats.forward_tokens += len(rows)
            logits = out.logits[:, -1].float()
    got = [[(toks[r], lps[r], tops[r] if k else None, texts[r], finish[r], stop[r]) for r in range(p * n, (p + 1) * n)]
           for p in range(len(prompts))]
    return got, (s.stats.forward_tokens - f0, s.stats.generated_tokens - g0)


def as_tuples(groups):
    return [[(c.token_ids, c.logprobs, c.top_logprobs, c.text, c.finish_reason, c.stop) for c in g] for g in groups]


def prefixes(k: int) -> list[str]:
    """Gym problems with 0, 1, 2, ... solution steps already written (prompts of different lengths)."""
    return [p.prompt + "".join(s + "\n" for s in parse_prompt(p.prompt).solution_steps()[:i])
            for i, p in enumerate(make_split("long", k))]


CASES = [SamplingParams(n=3, max_new_tokens=60, seed=2, stop=["\n", "=1"], top_p=0.9, top_logprobs=2),
         SamplingParams(n=2, max_new_tokens=30, temperature=0.7, seed=5),
         SamplingParams(n=1, max_new_tokens=40, temperature=0),
         SamplingParams(n=4, max_new_tokens=20, seed=1, ignore_eos=True, stop=["+"]),
         SamplingParams(n=3, max_new_tokens=80, seed=4, ignore_eos=True, stop=["<eos>", "=0"])]


@pytest.fixture(scope="module")
def samplers():
    return {name: HFSampler.from_pretrained(default_policy(), device="cpu", decode_options=o)
            for name, o in (("compact", None), ("sync_free", SYNC_FREE), ("static", STATIC))}


@pytest.mark.parametrize("kv_store", [False, True])
def test_default_loop_is_bit_identical_to_the_host_loop(samplers, kv_store):
    new, ref = samplers["compact"], HFSampler.from_pretrained(default_policy(), device="cpu")
    assert new.decode_options == DecodeOptions()                      # the CPU default
    for s in (new, ref):
        s.set_kv_cache(20_000 if kv_store else 0)
    prompts, stopped, nucleus_draws, by_id = prefixes(5), 0, 0, 0
    for params in CASES:
        for share in (True, False):
            f0, g0 = new.stats.forward_tokens, new.stats.generated_tokens
            got = as_tuples(new.sample(prompts, params, share_prefix=share))
            want, counts = old_sample(ref, prompts, params, share_prefix=share)
            assert got == want
            assert (new.stats.forward_tokens - f0, new.stats.generated_tokens - g0) == counts
            stopped += sum(c[5] is not None for g in got for c in g)
            by_id += sum(c[5] == "<eos>" for g in got for c in g)
            nucleus_draws += sum(len(c[0]) for g in got for c in g) if params.top_p < 1 else 0
    new.set_kv_cache(0)
    assert stopped > 10 and nucleus_draws > 100 and by_id > 0     # the stop and top-p paths really ran


@pytest.mark.parametrize("mode,kv_store", [("sync_free", False), ("static", False), ("static", True)])
def test_sync_free_loops_give_the_same_samples(samplers, mode, kv_store):
    s, ref = samplers[mode], samplers["compact"]
    prompts = prefixes(5)
    s.set_kv_cache(20_000 if kv_store else 0)
    for params in CASES:
        got, want = s.sample(prompts, params), ref.sample(prompts, params)
        for g, w in zip(got, want):
            for a, b in zip(g, w):
                assert (a.token_ids, a.text, a.finish_reason, a.stop) == (b.token_ids, b.text, b.finish_reason, b.stop)
                assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
                if b.top_logprobs is not None:
                    assert [list(t) for t in a.top_logprobs] == [list(t) for t in b.top_logprobs]
    s.set_kv_cache(0)


@pytest.mark.parametrize("mode", ["compact", "sync_free", "static"])
def test_sampled_logprobs_equal_a_teacher_forced_forward(samplers, mode):
    s = samplers[mode]
    prompts = prefixes(4)
    params = SamplingParams(n=3, max_new_tokens=48, seed=7, stop=["\n\n"], top_p=0.95)
    groups = s.sample(prompts, params)
    ids = [s.encode_prompt(p) for p in prompts]
    assert teacher_forced_gap(s.model, ids, groups) < 1e-4
    # the check can fail: log-probs shifted by one position are far from the teacher-forced ones
    for g in groups:
        for c in g:
            c.logprobs = c.logprobs[1:] + c.logprobs[:1]
    assert teacher_forced_gap(s.model, ids, groups) > 0.1


def test_options_refuse_impossible_combinations():
    with pytest.raises(ValueError, match="compact=False"):
        DecodeOptions(static_cache=True)
    with pytest.raises(ValueError, match="static_cache=True"):
        DecodeOptions(compact=False, compile=True)
    assert DecodeOptions.for_device("cuda") == DecodeOptions(compact=False, static_cache=True)
