"""Generative verifiers: prompt a causal LM to verify a solution step by step, read its verdicts.

Two verification styles (GenPRM, arXiv 2504.00891; ThinkPRM, arXiv 2504.16828):

* `thinkprm` (ThinkPRM, Khalifa et al. 2025): one chain per solution; the verifier writes
  `Step k: ... \\boxed{correct}` / `\\boxed{incorrect}` for each step and may end with
  `Is the solution correct? Yes|No`.
* `genprm` (GenPRM, Zhao et al. 2025): one chain per step prefix (problem + steps 1..k); the chain
  ends with a Yes/No judgement, `\\boxed{Yes}` or `Judgement: No`.

Score of one verdict (GenPRM's rule): `P(pos) / (P(pos) + P(neg))` where P(w) is the model's
probability of the verdict word w in place of the one it wrote, given everything before it
(`verdict_probability`; for a one-token word this is the token's probability at the verdict
position). That needs the model's logits: a local HF model (`from_pretrained`). Over HTTP
(`from_openai`: vLLM, SGLang, `prmkit serve-policy`) the endpoint's top logprobs at the verdict
token are used when asked for (`top_logprobs=k`; a side missing from the list gets the smallest
listed logprob, GenPRM's rule); otherwise each verdict counts as 1 or 0 (verdict frequencies).
A step's score is the average over the K chains that gave it a verdict (GenPRM Maj@K / ThinkPRM
parallel scaling).

Unparseable output is never silently 0: `verify` returns None for a step no chain gave a verdict
for and counts it (`stats.unparsed_steps`, `stats.unparsed_chains`); `score` (the RewardModel
protocol, which speaks floats) puts `default_score` there (0.5, GenPRM's choice for a missing
verdict; use float('nan') to make gaps loud).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from prmkit.policy.base import SamplingParams
from prmkit.rewards.aggregate import AGGREGATIONS
from prmkit.rewards.base import ScorerStats
from prmkit.rewards.verdicts import (Verdict, cased_pair, parse_final_verdict, parse_step_verdicts, parse_yes_no,
                                     top_logprob_verdict, verdict_probability)

THINKPRM_TEMPLATE = (
    "Problem:\n{problem}\n\nProposed solution:\n{solution}\n\n"
    "Check every step of the proposed solution in order. For each step write 'Step k:', your "
    "reasoning, and the verdict \\boxed{{correct}} or \\boxed{{incorrect}}. End with "
    "'Is the solution correct? Yes' or 'Is the solution correct? No'.\n"
    "Let's verify step by step:\n")
GENPRM_TEMPLATE = (
    "Problem:\n{problem}\n\nSolution so far:\n{solution}\n\n"
    "Is step {k} correct? Analyse it, then give the judgement as \\boxed{{Yes}} or \\boxed{{No}}.\n")

# style -> (verdict words (positive, negative), template, one chain per prefix?)
STYLES: dict[str, tuple[tuple[str, str], str, bool]] = {
    "thinkprm": (("correct", "incorrect"), THINKPRM_TEMPLATE, False),
    "genprm": (("Yes", "No"), GENPRM_TEMPLATE, True),
}


def _openai_top_logprobs(sampler: Any, prompts: list[str], params: SamplingParams, seeds: list[int],
                         k: int) -> list[list[tuple[str, tuple[list[str], list[dict | None]] | None]]]:
    """K chains per prompt from an OpenAI-compatible /completions endpoint asking for the top-k
    logprobs of every generated token; per chain (text, (token strings, top logprobs) or None)."""
    from prmkit.errors import InputError

    url = f"{sampler.base_url}/completions"
    out: list = []
    step = getattr(sampler, "max_prompts", 32)
    for c in range(0, len(prompts), step):
        chunk, chunk_seeds = prompts[c:c + step], seeds[c:c + step]
        body = {"model": sampler.model, "prompt": chunk, "n": params.n, "max_tokens": params.max_new_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "logprobs": k,
                "seed": chunk_seeds[0], "prompt_seeds": chunk_seeds}
        r = sampler.client.post(url, json=body)
        if r.status_code != 200:
            raise InputError(f"server answered {r.status_code}: {r.text[:300]}", file=url)
        groups: list[list[Any]] = [[None] * params.n for _ in chunk]
        for n, ch in enumerate(r.json()["choices"]):
            idx = ch.get("index", n)
            lp = ch.get("logprobs") or {}
            tokens, top = lp.get("tokens"), lp.get("top_logprobs")
            info = (list(tokens), list(top)) if tokens and top else None
            groups[idx // params.n][idx % params.n] = (ch.get("text", ""), info)
        sampler.stats.calls += 1
        out += groups
    return out


# ---------------------------------------------------------------------------------------------
# teacher-forced verdict probabilities


def word_logprobs(model: Any, pad_id: int, prefixes: Sequence[list[int]], words: Sequence[list[int]],
                  batch_size: int = 16) -> list[float]:
    """log P(word | prefix) = sum of the word's token log-probabilities, for each (prefix, word) pair
    of token ids; one padded forward per chunk (right padding: a row's values ignore its padding)."""
    import torch

    from prmkit.lm import token_logprobs

    out: list[float] = []
    device = next(model.parameters()).device
    for c in range(0, len(prefixes), batch_size):
        rows = [list(p) + list(w) for p, w in zip(prefixes[c:c + batch_size], words[c:c + batch_size])]
        T = max(map(len, rows))
        ids = torch.full((len(rows), T), pad_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(rows), T), dtype=torch.long)  # (B, T)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        with torch.no_grad():
            lp = token_logprobs(model, ids.to(device), mask.to(device)).cpu()  # (B, T-1)
        for i, (p, w) in enumerate(zip(prefixes[c:c + batch_size], words[c:c + batch_size])):
            out.append(float(lp[i, len(p) - 1:len(p) - 1 + len(w)].sum()))
    return out


# ---------------------------------------------------------------------------------------------


@dataclass
class GenerativeStats(ScorerStats):
    """Work counters; `tokens_scored` counts prompt, generated and teacher-forced tokens."""

    chains: int = 0
    unparsed_chains: int = 0  # chains with no verdict at all
    unparsed_steps: int = 0  # steps no chain gave a verdict for (scored `default_score`)


@dataclass
class Verification:
    """What the verifier said about one solution."""

    step_scores: list[float | None]  # (S,) mean over chains; None: no chain gave a verdict
    chain_scores: list[list[float | None]]  # (K, S) per chain: probability (or 1/0), None if unparsed
    chains: list[str]  # the chains' texts: K for thinkprm; S*K for genprm (step 1's K chains first)
    final: list[bool | None] = field(default_factory=list)  # thinkprm's closing Yes/No per chain
    unparsed_chains: int = 0


class GenerativeVerifier:
    """A causal LM as a step verifier (ThinkPRM / GenPRM styles), behind the RewardModel protocol.

    `sampler`: any prmkit Sampler (HF or OpenAI-compatible). When it carries a `model` and a
    `tokenizer` (the HF sampler) and `use_logits` is on, each verdict scores P(pos)/(P(pos)+P(neg));
    otherwise 1.0 / 0.0 (frequencies over the K chains).
    """

    def __init__(self, sampler: Any, style: str = "thinkprm", num_chains: int = 4, temperature: float = 0.6,
                 top_p: float = 0.95, max_new_tokens: int = 1024, seed: int = 0, aggregation: str = "min",
                 default_score: float = 0.5, template: str | None = None, use_logits: bool = True,
                 chat_template: bool = False, batch_size: int = 16, top_logprobs: int = 0):
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; expected one of {sorted(STYLES)}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {sorted(AGGREGATIONS)}")
        if num_chains < 1:
            raise ValueError(f"num_chains must be >= 1, got {num_chains}")
        self.sampler, self.style = sampler, style
        self.words, default_template, self.per_prefix = STYLES[style]
        self.template = template or default_template
        self.params = SamplingParams(n=num_chains, max_new_tokens=max_new_tokens, temperature=temperature,
                                     top_p=top_p, seed=seed)
        self.aggregation, self.default_score, self.seed = aggregation, default_score, seed
        model = getattr(sampler, "model", None)  # an HF model; OpenAISampler's `model` is a name
        self.model = model if use_logits and hasattr(model, "parameters") else None
        self.tokenizer = getattr(sampler, "tokenizer", None)
        self.chat_template, self.batch_size = chat_template, batch_size
        if top_logprobs and not hasattr(sampler, "client"):
            raise ValueError("top_logprobs needs an OpenAI-compatible sampler (from_openai)")
        self.top_logprobs = top_logprobs
        self.stats = GenerativeStats()

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str = "", dtype: str = "float32",
                        trust_remote_code: bool = False, **kw: Any) -> "GenerativeVerifier":
        """A local directory or hub id (any AutoModelForCausalLM); verdicts scored from its logits."""
        from prmkit.policy.hf import HFSampler

        return cls(HFSampler.from_pretrained(name_or_path, device=device, dtype=dtype,
                                             trust_remote_code=trust_remote_code), **kw)

    @classmethod
    def from_openai(cls, base_url: str, model: str | None = None, api_key: str | None = None,
                    **kw: Any) -> "GenerativeVerifier":
        """An OpenAI-compatible endpoint (vLLM, SGLang, `prmkit serve-policy`). With `top_logprobs=k`
        (vLLM/SGLang: k up to 20) verdicts are scored from the returned top logprobs; otherwise,
        or where the verdict's alternatives are missing, by verdict frequencies."""
        from prmkit.policy.openai import OpenAISampler

        return cls(OpenAISampler(base_url=base_url, model=model, api_key=api_key), **kw)

    @property
    def num_parameters(self) -> int:
        return int(getattr(self.sampler, "num_parameters", 0) or 0)

    # -----------------------------------------------------------------------------------------

    def prompt(self, problem: str, steps: Sequence[str], k: int | None = None) -> str:
        """The verification prompt for a solution (thinkprm) or for its prefix ending at step k (genprm)."""
        shown = steps if k is None else steps[:k]
        solution = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(shown))
        text = self.template.format(problem=problem.strip(), solution=solution, k=k if k is not None else len(steps))
        if self.chat_template and self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                      add_generation_prompt=True)
        return text

    def _generate(self, prompts: list[str]) -> tuple[list[list[str]], list[list[Any]]]:
        """K chains per prompt, and per chain its (token strings, top logprobs) when the endpoint
        returned them (else None). Each prompt's stream is seeded by its own text, so a solution's
        chains do not depend on what else is in the batch."""
        seeds = [(zlib.crc32(p.encode()) ^ (self.seed * 2_654_435_761)) % 2**31 for p in prompts]
        if self.top_logprobs:
            groups = _openai_top_logprobs(self.sampler, prompts, self.params, seeds, self.top_logprobs)
            self.stats.chains += sum(len(g) for g in groups)
            return [[t for t, _ in g] for g in groups], [[top for _, top in g] for g in groups]
        before = getattr(self.sampler.stats, "forward_tokens", 0)
        groups = self.sampler.sample(prompts, self.params, seeds=seeds)
        self.stats.tokens_scored += max(0, getattr(self.sampler.stats, "forward_tokens", 0) - before)
        self.stats.chains += sum(len(g) for g in groups)
        return [[c.text for c in g] for g in groups], [[None] * len(g) for g in groups]

    def _probabilities(self, items: list[tuple[str, str, Verdict, Any]]) -> list[float]:
        """Score of each (prompt, chain text, verdict, top logprobs or None): P(pos)/(P(pos)+P(neg))
        from the endpoint's top logprobs, else by teacher forcing, else 1/0 (no logits)."""
        out: list[float | None] = [None] * len(items)
        for n, (_, text, v, top) in enumerate(items):
            if top is not None:
                out[n] = top_logprob_verdict(text, v, top[0], top[1], cased_pair(self.words, v.word))
        forced = [n for n in range(len(items)) if out[n] is None and self.model is not None and items[n][3] is None]
        if forced:
            for n, p in zip(forced, self._teacher_forced([items[n][:3] for n in forced])):
                out[n] = p
        return [p if p is not None else (1.0 if v.positive else 0.0) for p, (_, _, v, _) in zip(out, items)]

    def _teacher_forced(self, items: list[tuple[str, str, Verdict]]) -> list[float]:
        tok = self.tokenizer

        def ids(text: str) -> list[int]:
            return list(tok(text, add_special_tokens=False)["input_ids"]) if text else []

        prefixes, words = [], []
        for prompt, text, v in items:
            prefix = list(tok(prompt)["input_ids"]) + ids(text[:v.start])
            for w in cased_pair(self.words, v.word):
                prefixes.append(prefix)
                words.append(ids(w))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        lps = word_logprobs(self.model, pad, prefixes, words, self.batch_size)
        self.stats.tokens_scored += sum(len(p) + len(w) for p, w in zip(prefixes, words))
        return [verdict_probability(lps[2 * i], lps[2 * i + 1]) for i in range(len(items))]

    def verify(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[Verification]:
        """Verdicts and scores for each (problem prompt, steps) pair."""
        if len(prompts) != len(steps):
            raise ValueError(f"expected one list of steps per prompt, got {len(prompts)} and {len(steps)}")
        self.stats.calls += 1
        self.stats.sequences += len(prompts)
        # one verification prompt per solution (thinkprm) or per step prefix (genprm)
        jobs = [(i, None) for i in range(len(prompts))] if not self.per_prefix else [
            (i, k) for i in range(len(prompts)) for k in range(1, len(steps[i]) + 1)]
        vprompts = [self.prompt(prompts[i], steps[i], k) for i, k in jobs]
        texts, tops = self._generate(vprompts) if jobs else ([], [])
        # parse: (job, chain) -> per-step verdicts
        found: list[tuple[int, int, int, int, Verdict]] = []  # (solution, chain, step, job, verdict)
        results = [Verification([None] * len(s), [[None] * len(s) for _ in range(self.params.n)], []) for s in steps]
        parsed_any = [[False] * self.params.n for _ in prompts]
        for j, ((i, k), chains) in enumerate(zip(jobs, texts)):
            results[i].chains.extend(chains)
            for c, text in enumerate(chains):
                if k is None:
                    verdicts = parse_step_verdicts(text, len(steps[i]))
                    final = parse_final_verdict(text)
                    results[i].final.append(final.positive if final else None)
                    hits = [(s, v) for s, v in enumerate(verdicts) if v is not None]
                else:
                    v = parse_yes_no(text)
                    hits = [(k - 1, v)] if v is not None else []
                parsed_any[i][c] = parsed_any[i][c] or bool(hits)
                found += [(i, c, s, j, v) for s, v in hits]
        probs = self._probabilities([(vprompts[j], texts[j][c], v, tops[j][c]) for i, c, s, j, v in found])
        for (i, c, s, _, _), p in zip(found, probs):
            results[i].chain_scores[c][s] = p
        for i, r in enumerate(results):
            for s in range(len(steps[i])):
                got = [row[s] for row in r.chain_scores if row[s] is not None and not math.isnan(row[s])]
                r.step_scores[s] = math.fsum(got) / len(got) if got else None
            r.unparsed_chains = sum(1 for ok in parsed_any[i] if not ok) if not self.per_prefix else sum(
                1 for t in r.chains if parse_yes_no(t) is None)
            self.stats.unparsed_chains += r.unparsed_chains
            self.stats.unparsed_steps += sum(1 for v in r.step_scores if v is None)
        return results

    def score(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        """RewardModel protocol: step scores, `default_score` where no chain gave a verdict."""
        return [[self.default_score if v is None else v for v in r.step_scores] for r in self.verify(prompts, steps)]
