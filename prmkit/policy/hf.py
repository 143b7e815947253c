"""Batched sampling from any Hugging Face causal LM with a KV cache.

The prompt of each request is run through the model once; its cache is then repeated for the `n`
samples (`DynamicCache.batch_repeat_interleave`), so K continuations of a step prefix cost one
prefix forward, not K. Finished rows are dropped from the batch as they end. Each prompt samples
from its own seeded stream (inverse-CDF sampling with per-prompt uniforms), so a prompt's samples
do not depend on which other prompts share its batch.
"""

from __future__ import annotations

from typing import Sequence

from prmkit.policy.base import Completion, SamplerStats, SamplingParams
from prmkit.steps import DEFAULT_SEP, split_steps


class HFSampler:
    def __init__(self, model, tokenizer, sep: str = DEFAULT_SEP, batch_size: int = 64):
        import torch

        self.model, self.tokenizer, self.sep = model.eval(), tokenizer, sep
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.stats = SamplerStats()
        self._piece_cache: dict[int, str] = {}
        self._torch = torch
        self._special = set(tokenizer.all_special_ids)
        self._special_names = {t: tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens}
        # transformers >= 5.2x renamed the forward argument `past_key_values` to `cache`
        import inspect

        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.kv_store = None
        from prmkit.prompting import PromptFormat

        self.prompt_format = PromptFormat()  # how a problem becomes this policy's input (`render`)

    def render(self, problem: str) -> str:
        """The model input of a problem under this sampler's prompt format (the identity by default)."""
        return self.prompt_format.render(problem, self.tokenizer)

    def set_kv_cache(self, max_tokens: int) -> None:
        """Keep the keys/values of prompts across calls (at most `max_tokens` positions, LRU; 0 = off): a
        prompt extending a kept one (search: the last round's prompt + its new step) prefills only the
        tokens after it (`rewards.kv_prefix`). `stats.forward_tokens` counts the positions actually run."""
        from prmkit.rewards.kv_prefix import KVPrefixStore

        self.kv_store = KVPrefixStore(max_tokens) if max_tokens else None

    @classmethod
    def from_pretrained(cls, name_or_path: str, sep: str = DEFAULT_SEP, device: str = "",
                        dtype: str = "float32", batch_size: int = 64, trust_remote_code: bool = False,
                        prompt_format=None) -> "HFSampler":
        """Load a local directory or a hub id (any `AutoModelForCausalLM`); device "" = auto (`lm.resolve_device`);
        `trust_remote_code` runs the checkpoint's own modeling code; `prompt_format` (checked against the
        tokenizer before the weights load) renders its problems."""
        import os

        from prmkit.lm import resolve_device

        device = resolve_device(device)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if os.environ.get("PRMKIT_QUIET") == "1":
            hf_logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        if prompt_format is not None:
            from prmkit.prompting import note_unused_chat_template

            prompt_format.check(tok, where=str(name_or_path))
            note_unused_chat_template(prompt_format, tok, "the policy")
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype),
                                                     trust_remote_code=trust_remote_code).to(device)
        s = cls(model, tok, sep=sep, batch_size=batch_size)
        if prompt_format is not None:
            s.prompt_format = prompt_format
        return s

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -----------------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> list[int]:
        from prmkit.prompting import log_model_input

        bos = self.tokenizer.bos_token
        # a chat template that writes the BOS itself: do not add a second one
        extra = {"add_special_tokens": False} if bos and prompt.startswith(bos) else {}
        ids = list(self.tokenizer(prompt, **extra)["input_ids"])
        log_model_input("policy", self.tokenizer, ids)
        return ids

    def sample(self, prompts: Sequence[str], params: SamplingParams,
               seeds: Sequence[int] | None = None, share_prefix: bool = True) -> list[list[Completion]]:
        """`params.n` samples per prompt; `share_prefix=False` re-runs each prompt n times (the
        no-reuse baseline for benchmarks)."""
        if seeds is None:
            seeds = [params.seed * 1_000_003 + i for i in range(len(prompts))]
        from prmkit.prompting import with_stops

        params = with_stops(params, self.prompt_format)
        per_chunk = max(1, self.batch_size // max(1, params.n))
        out: list[list[Completion]] = []
        for c in range(0, len(prompts), per_chunk):
            chunk_ids = [self.encode_prompt(p) for p in prompts[c:c + per_chunk]]
            out += self.sample_ids(chunk_ids, params, list(seeds[c:c + per_chunk]), share_prefix)
        return out

    def sample_ids(self, prompt_ids: list[list[int]], params: SamplingParams, seeds: list[int],
                   share_prefix: bool = True) -> list[list[Completion]]:
        torch = self._torch
        n, P = params.n, len(prompt_ids)
        self.stats.calls += 1
        with torch.no_grad():
            if share_prefix:
                logits, cache, mask, pos = self._prefill(prompt_ids)
                logits = logits.repeat_interleave(n, 0)  # (P*n, V)
                cache.batch_repeat_interleave(n)
                mask, pos = mask.repeat_interleave(n, 0), pos.repeat_interleave(n, 0)
            else:
                logits, cache, mask, pos = self._prefill([ids for ids in prompt_ids for _ in range(n)])
            gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
            return self._decode(logits, cache, mask, pos, gens, params, P)

    def _prefill(self, prompt_ids: list[list[int]]):
        if self.kv_store is not None:
            return self._prefill_cached(prompt_ids)
        torch = self._torch
        T = max(map(len, prompt_ids))
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(prompt_ids), T), pad, dtype=torch.long)  # (B, T) left-padded
        mask = torch.zeros((len(prompt_ids), T), dtype=torch.long)  # (B, T)
        for i, p in enumerate(prompt_ids):
            ids[i, T - len(p):] = torch.tensor(p)
            mask[i, T - len(p):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
        from transformers import DynamicCache

        cache = DynamicCache()
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=pos.to(self.device), use_cache=True, **{self._cache_kw: cache})
        self.stats.forward_tokens += int(mask.sum())
        return out.logits[:, -1].float(), cache, mask.to(self.device), pos[:, -1:].to(self.device)

    def _prefill_cached(self, prompt_ids: list[list[int]]):
        """`_prefill` through the key/value store: each prompt runs only the tokens after its longest kept
        prefix (at least its last token, whose logits start decoding), then is kept whole."""
        from prmkit.rewards.kv_prefix import Entry, prefix_hashes, prefill_rows, row_kv

        rows, hashes = [], []
        for p in prompt_ids:
            h = prefix_hashes(p)
            c, hit = self.kv_store.find(p, h)
            rows.append((p, min(c, len(p) - 1), hit))
            hashes.append(h)
        logits, cache, mask, ss, C = prefill_rows(self.model, rows, "policy", self.tokenizer.pad_token_id)
        self.stats.forward_tokens += sum(ss)
        last = logits[self._torch.arange(len(rows)), self._torch.tensor(ss) - 1]          # (B, V)
        for b, (p, c, _) in enumerate(rows):
            self.kv_store.put(Entry(list(p), {"policy": row_kv(cache, b, c, ss[b], C)}), [len(p)], hashes[b])
        pos = self._torch.tensor([[len(p) - 1] for p in prompt_ids], device=mask.device)     # (B, 1)
        return last, cache, mask, pos

    def _pieces(self, token_id: int) -> str:
        s = self._piece_cache.get(token_id)
        if s is None:
            s = "" if token_id in self._special else self.tokenizer.decode([token_id])
            self._piece_cache[token_id] = s
        return s

    def _draw(self, logits, gens, rows, params: SamplingParams, n: int):
        """Next token for each active row: greedy at temperature 0, else inverse-CDF sampling from
        the temperature/top-p distribution with a uniform from the row's prompt stream."""
        torch = self._torch
        if params.temperature == 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / params.temperature, -1)  # (R, V)
        if params.top_p < 1.0:
            sp, idx = probs.sort(-1, descending=True)
            keep = (sp.cumsum(-1) - sp) < params.top_p  # the smallest set reaching top_p
            probs = torch.zeros_like(probs).scatter(-1, idx, sp * keep)
        # uniforms come from each prompt's own stream, one block per prompt (rows are sorted by prompt)
        parts, start = [], 0
        while start < len(rows):
            p, end = rows[start] // n, start
            while end < len(rows) and rows[end] // n == p:
                end += 1
            parts.append(torch.rand(end - start, generator=gens[p]))
            start = end
        u = torch.cat(parts)  # (R,)
        cdf = probs.cumsum(-1)  # (R, V)
        u = u.to(cdf.device) * cdf[:, -1]
        return torch.searchsorted(cdf, u[:, None]).squeeze(-1).clamp(max=probs.size(-1) - 1)

    def _decode(self, logits, cache, mask, pos, gens, params: SamplingParams, num_prompts: int):
        torch = self._torch
        n, eos = params.n, self.tokenizer.eos_token_id
        R = logits.size(0)
        tokens: list[list[int]] = [[] for _ in range(R)]
        lps: list[list[float]] = [[] for _ in range(R)]
        k_top = min(params.top_logprobs, logits.size(-1))
        tops: list[list[dict[int, float]]] = [[] for _ in range(R)]
        texts = [""] * R
        finish = ["length"] * R
        stop_hit: list[str | None] = [None] * R
        # a stop string that is one special token (e.g. a chat template's end of turn, "<|im_end|>") decodes
        # to no text, so it is matched by id
        stop_ids = {self._special_names[s]: s for s in params.stop if s in self._special_names}
        rows = list(range(R))  # original row of each active batch slot
        for _ in range(params.max_new_tokens):
            logp = torch.log_softmax(logits, -1)  # (A, V)
            nxt = self._draw(logits, gens, rows, params, n)  # (A,)
            chosen = logp.gather(-1, nxt[:, None]).squeeze(-1).tolist()
            if k_top:
                tv, ti = logp.topk(k_top, -1)  # (A, k)
                tv, ti = tv.tolist(), ti.tolist()
            keep = []
            for j, (r, t) in enumerate(zip(rows, nxt.tolist())):
                tokens[r].append(t)
                lps[r].append(chosen[j])
                if k_top:
                    tops[r].append(dict(zip(ti[j], tv[j])))
                done = False
                if t == eos and not params.ignore_eos:
                    finish[r], done = "stop", True
                elif t in stop_ids:
                    finish[r], stop_hit[r], done = "stop", stop_ids[t], True
                else:
                    texts[r] += self._pieces(t)
                    for s in params.stop:
                        if texts[r].endswith(s):
                            finish[r], stop_hit[r], done = "stop", s, True
                            texts[r] = texts[r][: len(texts[r]) - len(s)]
                            break
                if not done:
                    keep.append(j)
            self.stats.generated_tokens += len(rows)
            if not keep:
                break
            if len(keep) < len(rows):
                idx = torch.tensor(keep, device=mask.device)
                cache.batch_select_indices(idx)
                nxt, mask, pos = nxt[idx], mask[idx], pos[idx]
                rows = [rows[j] for j in keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], -1)  # (A, T+1)
            pos = pos + 1  # (A, 1)
            out = self.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, use_cache=True,
                             **{self._cache_kw: cache})
            self.stats.forward_tokens += len(rows)
            logits = out.logits[:, -1].float()
        result = []
        for p in range(num_prompts):
            group = []
            for r in range(p * n, (p + 1) * n):
                group.append(Completion(text=texts[r], token_ids=tokens[r], logprobs=lps[r],
                                        steps=split_steps(texts[r], self.sep), finish_reason=finish[r],
                                        stop=stop_hit[r], top_logprobs=tops[r] if k_top else None))
            result.append(group)
        return result
