"""Batched sampling from any Hugging Face causal LM with a KV cache.

The prompt of each request is run through the model once; its cache is then repeated for the `n`
samples (`DynamicCache.batch_repeat_interleave`), so K continuations of a step prefix cost one
prefix forward, not K. Each prompt samples from its own seeded stream (inverse-CDF sampling with
per-prompt uniforms), so a prompt's samples do not depend on which other prompts share its batch.
The decode loop (`policy.decode`) keeps its state on the device: on CPU it drops finished rows as
they end (bit-identical to the original host loop); on CUDA it runs without a per-token host sync
over a static KV cache, optionally compiled.
"""

from __future__ import annotations

import os
from typing import Sequence

from prmkit.lm import resolve_device
from prmkit.lm.kv_prefix import Entry, KVPrefixStore, cache_kwarg, prefill_rows, prefix_hashes, row_kv
from prmkit.policy.base import Completion, SamplerStats, SamplingParams
from prmkit.policy.decode import FINISH_EOS, FINISH_LENGTH, DecodeOptions, StopMatcher, decode
from prmkit.policy.kv_steps import DynamicStep, StaticStep, compiled_forward
from prmkit.prompting import PromptFormat, log_model_input, note_unused_chat_template, with_stops
from prmkit.steps import DEFAULT_SEP, split_steps


class HFSampler:
    def __init__(self, model, tokenizer, sep: str = DEFAULT_SEP, batch_size: int = 64,
                 decode_options: DecodeOptions | None = None):
        """`decode_options`: how the decode loop runs (`policy.decode.DecodeOptions`; default per device:
        row compaction on CPU, bit-identical to the original host loop; no per-token sync and a static
        KV cache on CUDA)."""
        import torch

        self.model, self.tokenizer, self.sep = model.eval(), tokenizer, sep
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.stats = SamplerStats()
        self._piece_cache: dict[int, str] = {}
        self._torch = torch
        self._special = set(tokenizer.all_special_ids)
        self._special_names = {t: tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens}
        self._cache_kw = cache_kwarg(model)  # transformers >= 5.2x renamed `past_key_values` to `cache`
        self.kv_store = None
        self.decode_options = decode_options or DecodeOptions.for_device(self.device)
        self._matchers: dict = {}
        self._compiled = None  # the compiled forward (DecodeOptions.compile), made on first use
        self.prompt_format = PromptFormat()  # how a problem becomes this policy's input (`render`)

    def render(self, problem: str) -> str:
        """The model input of a problem under this sampler's prompt format (the identity by default)."""
        return self.prompt_format.render(problem, self.tokenizer)

    def set_kv_cache(self, max_tokens: int) -> None:
        """Keep the keys/values of prompts across calls (at most `max_tokens` positions, LRU; 0 = off): a
        prompt extending a kept one (search: the last round's prompt + its new step) prefills only the
        tokens after it (`lm.kv_prefix`). `stats.forward_tokens` counts the positions actually run."""
        self.kv_store = KVPrefixStore(max_tokens) if max_tokens else None

    @classmethod
    def from_pretrained(cls, name_or_path: str, sep: str = DEFAULT_SEP, device: str = "",
                        dtype: str = "float32", batch_size: int = 64, trust_remote_code: bool = False,
                        prompt_format=None,
                        decode_options: DecodeOptions | None = None) -> "HFSampler":
        """Load a local directory or a hub id (any `AutoModelForCausalLM`); device "" = auto (`lm.resolve_device`);
        `trust_remote_code` runs the checkpoint's own modeling code; `prompt_format` (checked against the
        tokenizer before the weights load) renders its problems."""
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
            prompt_format.check(tok, where=str(name_or_path))
            note_unused_chat_template(prompt_format, tok, "the policy")
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype),
                                                     trust_remote_code=trust_remote_code).to(device)
        s = cls(model, tok, sep=sep, batch_size=batch_size, decode_options=decode_options)
        if prompt_format is not None:
            s.prompt_format = prompt_format
        return s

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -----------------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> list[int]:
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

    def _stop_matcher(self, stops: list[str], vocab: int):
        """The device stop-string matcher for `stops` over the model's `vocab` ids (kept per stop list)."""
        key = (tuple(stops), vocab)
        m = self._matchers.get(key)
        if m is None:
            if len(self._matchers) >= 16:
                self._matchers.clear()
            m = self._matchers[key] = StopMatcher([self._pieces(t) for t in range(vocab)], stops, self.device,
                                                       self._special_names)
        return m

    def _decode(self, logits, cache, mask, pos, gens, params: SamplingParams, num_prompts: int):
        opts = self.decode_options
        S = params.max_new_tokens
        if opts.static_cache:
            if opts.compile and self._compiled is None:
                self._compiled = compiled_forward(self.model)
            step = StaticStep(self.model, self._cache_kw, cache, mask, pos, S, self._compiled if opts.compile else None)
        else:
            step = DynamicStep(self.model, self._cache_kw, cache, mask, pos, S)
        eos = self.tokenizer.eos_token_id
        eos = -1 if eos is None or params.ignore_eos else int(eos)
        matcher = self._stop_matcher(list(params.stop), logits.size(-1)) if params.stop else None
        st = decode(step, logits, gens, params, eos, matcher, opts, self.stats)
        return self._completions(st, params, num_prompts)

    def _completions(self, st, params: SamplingParams, num_prompts: int) -> list[list[Completion]]:
        """The decode state, read back once, as Completions: text = the concatenated token pieces (an EOS that
        ended the row excluded), less the stop string that ended it (a special-token stop has no text)."""
        n, S = params.n, len(params.stop)
        toks, lps, lens, fin = st.tokens.tolist(), st.logprobs.tolist(), st.lengths.tolist(), st.finish.tolist()
        tv, ti = (st.top_v.tolist(), st.top_i.tolist()) if st.top_v is not None else (None, None)
        result = []
        for p in range(num_prompts):
            group = []
            for r in range(p * n, (p + 1) * n):
                L = lens[r]
                ids = toks[r][:L]
                by_id = fin[r] == FINISH_EOS or fin[r] - 2 >= S      # ended by a token that adds no text
                text = "".join(self._pieces(t) for t in (ids[:-1] if by_id else ids))
                stop = params.stop[(fin[r] - 2) % S] if fin[r] >= 2 else None
                if stop is not None and fin[r] - 2 < S:
                    text = text[: len(text) - len(stop)]
                group.append(Completion(
                    text=text, token_ids=ids, logprobs=lps[r][:L], steps=split_steps(text, self.sep),
                    finish_reason="length" if fin[r] == FINISH_LENGTH else "stop", stop=stop,
                    top_logprobs=[dict(zip(ti[r][i], tv[r][i])) for i in range(L)] if tv is not None else None))
            result.append(group)
        return result
