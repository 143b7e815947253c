"""Implicit PRM: step rewards from the log-ratio of a trained LM and its frozen reference (Yuan et al. 2412.01981).

Token reward beta * log(pi(y_t|y_<t) / pi_ref(y_t|y_<t)); step reward = sum over the step's tokens;
q at a step end = running sum from the first response token (Implicit PRM, arXiv 2412.01981, `rewards.implicit_math`). The
model is trained from outcome labels only (`prmkit train implicit`, CE or DPO loss).

`score` returns sigmoid(q^{t_k}) per step ("q", default: the cumulative value, as ImplicitPRM's
ProcessBench evaluation reads it, Implicit PRM, arXiv 2412.01981) or sigmoid of the single step reward ("step").
Both models see the trace once (one forward pass each); the reference's log-probs are cached by
token ids (the reference forward doubles the cost), so a rescored trace costs one forward.

Layouts: "plain" (prompt, then the steps joined by `sep`, as prmkit trains them) or "eurus_chat"
(EurusPRM's card: the chat template, "\\n\\n" steps, and the tokens its cumulative q sums;
`rewards.public_prms.encode_eurus_chat`). A public implicit PRM is loaded by its preset name
(`readout="eurus-prm"`: its reference model, beta 0.001, layout and q, `public_prms.IMPLICIT_PRESETS`).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.lm import resolve_device, token_logprobs
from prmkit.lm.batching import length_sorted_batches, pad_batch
from prmkit.prompting import PromptFormat, log_inputs, render_all, saved_format
from prmkit.rewards.aggregate import AGGREGATIONS
from prmkit.rewards.base import HFScorerBase, PrefixCacheCounter, ScorerStats
from prmkit.rewards.implicit_math import implicit_prm_rewards, q_values, step_rewards_from_tokens
from prmkit.rewards.public_prms import IMPLICIT_PRESETS, encode_eurus_chat
from prmkit.rewards.readout import CachedTokenizer
from prmkit.rewards.rm_config import load_path, read_rm_config, resolve_ref, stored_path, write_rm_config
from prmkit.steps import DEFAULT_SEP, StepEncoding, encode_steps

STEP_SCORES = ("q", "step")
LAYOUTS = ("plain", "eurus_chat")
NO_REF = "none"             # the "w/o ref" variant of ImplicitPRM's evaluation (Implicit PRM, arXiv 2412.01981): log pi only


class ImplicitPRM(HFScorerBase):
    kind = "implicit"

    def __init__(self, model, ref_model, tokenizer, beta: float = 0.05, sep: str = DEFAULT_SEP,
                 aggregation: str = "min", threshold: float | None = None, batch_size: int = 64,
                 step_score: str = "q", ref_name: str = "", meta: dict | None = None, cache_size: int = 20000,
                 layout: str = "plain"):
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {sorted(AGGREGATIONS)}")
        if step_score not in STEP_SCORES:
            raise ValueError(f"unknown step_score {step_score!r}; expected one of {STEP_SCORES}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
        self.layout = layout
        self.model, self.tokenizer = model.eval(), tokenizer
        self.ref_model = ref_model.eval() if ref_model is not None else None
        for p in (self.ref_model.parameters() if self.ref_model is not None else []):
            p.requires_grad_(False)
        self.beta, self.sep, self.step_score = beta, sep, step_score
        self.aggregation, self.threshold, self.batch_size = aggregation, threshold, batch_size
        self.ref_name, self.meta = ref_name, dict(meta or {})
        self.stats = ScorerStats()
        self.prefix_cache = PrefixCacheCounter()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self._pieces = CachedTokenizer(tokenizer)
        self._ref_cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = cache_size
        self.max_length = 0   # most tokens per scored sequence (0 = the model's context); longer ones are refused
        self.prompt_format = PromptFormat()  # how a problem becomes this model's input; saved with it

    @classmethod
    def from_pretrained(cls, path: str, ref_model: str | None = None, device: str = "", *, readout: str | None = None,
                        trust_remote_code: bool = False, dtype: str = "float32", **kw) -> "ImplicitPRM":
        """A saved implicit PRM (its prmkit_rm.json), or a public one by preset name (`readout`, e.g.
        "eurus-prm": the card's reference model, beta, layout and q); explicit keywords win."""
        import torch

        device = resolve_device(device)

        from transformers import AutoModelForCausalLM, AutoTokenizer

        if readout and readout not in IMPLICIT_PRESETS:
            raise InputError(f"unknown implicit-PRM readout {readout!r}; expected one of {sorted(IMPLICIT_PRESETS)}",
                             field="readout")
        saved = {**(IMPLICIT_PRESETS[readout].options() if readout else {}), **read_rm_config(path)}
        ref = ref_model or load_path(saved.get("ref_model", ""), path) or path
        load = dict(dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if kw.get("layout", saved.get("layout")) == "eurus_chat" and not getattr(tok, "chat_template", None):
            raise InputError("the eurus_chat layout renders a chat, but this tokenizer has no chat template",
                             file=str(path), field="chat_template")
        model = AutoModelForCausalLM.from_pretrained(path, **load).to(device)
        ref_lm = (None if ref == NO_REF else AutoModelForCausalLM.from_pretrained(resolve_ref(ref), **load).to(device))
        for key in ("beta", "sep", "aggregation", "threshold", "step_score", "layout"):
            if key in saved and key not in kw:
                kw[key] = saved[key]
        kw.setdefault("meta", saved.get("meta", {}))
        fmt = kw.pop("prompt_format", None) or saved_format(path) or PromptFormat()
        rm = cls(model, ref_lm, tok, ref_name=ref, **kw)
        if fmt.chat_template and rm.layout != "plain":
            raise InputError(f"layout {rm.layout!r} applies its own chat template; the saved prompt format must not "
                             "add another", file=str(Path(path) / "prompt_format.json"), field="chat_template")
        rm.prompt_format = fmt
        return rm

    def save_pretrained(self, out: str | Path, extra: dict | None = None) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        write_rm_config(out, {"kind": self.kind, "ref_model": stored_path(self.ref_name, out), "beta": self.beta, "sep": self.sep,
                              "aggregation": self.aggregation, "threshold": self.threshold,
                              "step_score": self.step_score, "layout": self.layout,
                              "meta": {**self.meta, **(extra or {})}})
        self.prompt_format.save(out)
        return out

    @property
    def num_parameters(self) -> int:
        # both models run on every scored token
        ref = sum(p.numel() for p in self.ref_model.parameters()) if self.ref_model is not None else 0
        return sum(p.numel() for p in self.model.parameters()) + ref

    def _encode_rendered(self, prompt: str, steps: Sequence[str]) -> StepEncoding:
        if self.layout == "eurus_chat":
            return encode_eurus_chat(self.tokenizer, prompt, steps, sep=self.sep)
        return encode_steps(self._pieces, prompt, steps, sep=self.sep)

    def encode_many(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[StepEncoding]:
        """Ids of each (problem, steps) under this model's prompt format and layout."""
        prompts = render_all(self.prompt_format, prompts, self.tokenizer)
        if self.layout == "plain":
            self._pieces.prefetch(list(prompts) + [s for ss in steps for s in ss] + [self.sep])
        encs = [self._encode_rendered(p, s) for p, s in zip(prompts, steps)]
        log_inputs("reward_model", self.tokenizer, encs)
        return encs

    def ref_logprobs(self, encs: Sequence[StepEncoding], ids, attn):
        """Reference log-probs (B,T-1) of a padded batch, from the cache where every row is cached."""
        import torch

        keys = [tuple(e.input_ids) for e in encs]
        if self.ref_model is None:
            return torch.zeros(ids.shape[0], ids.shape[1] - 1, device=ids.device)   # (B,T-1) "w/o ref"
        if all(k in self._ref_cache for k in keys):
            rows = [self._ref_cache[k] for k in keys]
        else:
            with torch.inference_mode():
                lp = token_logprobs(self.ref_model, ids, attn).cpu()           # (B,T-1)
            rows = [lp[i, : len(k) - 1].clone() for i, k in enumerate(keys)]
            for k, r in zip(keys, rows):
                self._ref_cache[k] = r
            while len(self._ref_cache) > self._cache_size:
                self._ref_cache.popitem(last=False)
        out = torch.zeros(ids.shape[0], ids.shape[1] - 1)                     # (B,T-1)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out.to(ids.device)

    def score(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        import torch

        encs = self.checked_encodings(prompts, steps)                        # before any forward pass
        out: list[list[float]] = [[] for _ in encs]
        for batch in length_sorted_batches([len(e.input_ids) for e in encs], self.batch_size):
            be = [encs[i] for i in batch]
            ids, attn, ends = pad_batch(be, self.pad_id)
            ids, attn, ends = ids.to(self.device), attn.to(self.device), ends.to(self.device)
            with torch.inference_mode():
                lp = token_logprobs(self.model, ids, attn)                    # (B,T-1)
            ref = self.ref_logprobs(be, ids, attn)                            # (B,T-1)
            mask, start = response_mask(be, ids.shape[1])                     # (B,T-1), (B,)
            rewards = implicit_prm_rewards(lp, ref, mask.to(ids.device), self.beta)  # (B,T-1)
            col_ends = torch.where(ends >= 0, ends - 1, ends)                 # (B,S) token t -> logprob column t-1
            fn = q_values if self.step_score == "q" else step_rewards_from_tokens
            s = torch.sigmoid(fn(rewards, col_ends, start.to(ids.device))).cpu()  # (B,S)
            for row, i in enumerate(batch):
                out[i] = s[row, : len(encs[i].step_ends)].tolist()
            self.stats.tokens_scored += (2 if self.ref_model is not None else 1) * int(attn.sum())
        self.stats.uncached_tokens += (2 if self.ref_model is not None else 1) * sum(
            self.prefix_cache.new_tokens(e.input_ids, [e.prompt_len] + [x + 1 for x in e.step_ends]) for e in encs)
        self.stats.calls += 1
        self.stats.sequences += len(encs)
        return out


def response_mask(encs: Sequence[StepEncoding], T: int):
    """(B,T-1) bool over log-prob columns that score response tokens, and (B,) first response column."""
    import torch

    mask = torch.zeros(len(encs), T - 1, dtype=torch.bool)                   # (B,T-1)
    start = torch.zeros(len(encs), dtype=torch.long)                         # (B,)
    for i, e in enumerate(encs):
        # column j scores token j+1; response tokens are prompt_len .. len-1
        mask[i, e.prompt_len - 1: len(e.input_ids) - 1] = True
        start[i] = e.prompt_len - 1
    return mask, start

