"""Discriminative PRM: any HF backbone with a classifier head (or an LM-token readout) read at each step end.

All step scores of a trace come from ONE forward pass: the trace is encoded once (the readout's
layout, via `prmkit.steps`) and the head is read at every step-end position (docs/methods.md). Traces
are batched, sorted by length to limit padding, and right-padded with position ids 0..L-1, so under
causal attention a trace's scores do not depend on its batch neighbours or the batch size.

Optional likelihood feature (`loglik`): a frozen causal LM with the same tokenizer (for the gym
recipe, the policy that wrote the traces) gives each step's summed token log-likelihood
ll_k = sum_{t in step k, tag tokens excluded} log p_LM(x_t | x_<t); the step logit becomes
head_logit_k + w * ll_k + b, with w, b trained with the head. A small backbone fine-tuned on a few
thousand noisy step labels cannot rebuild the arithmetic check it needs at the step end (it learns
a position prior), while the LM that knows the task already assigns wrong steps a low likelihood.

Saved as a Hugging Face model dir plus `prmkit_rm.json` (kind, readout, aggregation, fitted threshold,
the likelihood feature's LM name and w, b); `prmkit.rewards.load_reward_model` reads it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from prmkit.errors import InputError
from prmkit.lm import resolve_device, token_logprobs
from prmkit.lm.batching import length_sorted_batches, pad_batch, prompt_lengths
from prmkit.lm.kv_prefix import KVPrefixStore
from prmkit.prompting import PromptFormat, log_inputs, render_all, saved_format
from prmkit.rewards.aggregate import AGGREGATIONS
from prmkit.rewards.base import HFScorerBase, PrefixCacheCounter, ScorerStats
from prmkit.rewards.discriminative_cached import score_cached
from prmkit.rewards.discriminative_packed import score_packed
from prmkit.rewards.readout import CachedTokenizer, Readout, get_readout
from prmkit.rewards.rm_config import load_path, read_rm_config, resolve_ref, stored_path, write_rm_config
from prmkit.steps import StepEncoding

def _model_format(path: str, readout: Readout):
    """The prompt format saved with a model dir (raw text without one); a readout that applies its own chat
    template takes the problem text as is."""
    fmt = saved_format(path) or PromptFormat()
    if fmt.chat_template and readout.layout != "segment":
        raise InputError(f"readout {readout.name!r} applies its own chat template; the saved prompt format "
                         "must not add another", file=str(Path(path) / "prompt_format.json"), field="chat_template")
    return fmt


class DiscriminativePRM(HFScorerBase):
    """A step-level classifier PRM behind the `RewardModel` protocol; scores are P(step is good)."""

    kind = "prm"

    def __init__(self, model, tokenizer, readout: str | dict | Readout = "trl", aggregation: str = "min",
                 threshold: float | None = None, batch_size: int = 64, meta: dict | None = None,
                 loglik_lm=None, loglik: dict | None = None, kv_cache_tokens: int = 0):
        import torch

        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {sorted(AGGREGATIONS)}")
        self.model, self.tokenizer = model.eval(), tokenizer
        self._pieces = CachedTokenizer(tokenizer)
        self.readout = get_readout(readout)
        self.aggregation, self.threshold, self.batch_size = aggregation, threshold, batch_size
        self.meta = dict(meta or {})
        self.stats = ScorerStats()
        self.prefix_cache = PrefixCacheCounter()
        self._good_bad = self.readout.token_ids(tokenizer)
        self.kv_store = None
        self.set_kv_cache(kv_cache_tokens)
        self.pack_tokens, self._packing_checked = 0, False
        self.max_length = 0   # most tokens per scored sequence (0 = the model's context); longer ones are refused
        self.prompt_format = PromptFormat()  # how a problem becomes this model's input; saved with it
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        # likelihood feature: frozen LM + trainable (w, b) — `fuse` holds them as a 1x1 linear layer
        self.loglik_lm, self.loglik = None, None
        self.fuse = None
        if loglik is not None:
            self.loglik = {"lm": loglik.get("lm", ""), "weight": float(loglik.get("weight", 1.0)),
                           "bias": float(loglik.get("bias", 0.0))}
            self.loglik_lm = loglik_lm.eval() if loglik_lm is not None else None
            if self.loglik_lm is None:
                raise ValueError("a loglik feature needs its language model (loglik_lm)")
            for p in self.loglik_lm.parameters():
                p.requires_grad_(False)
            self.fuse = torch.nn.Linear(1, 1).to(next(model.parameters()).device)  # beside the backbone
            with torch.no_grad():
                self.fuse.weight.fill_(self.loglik["weight"])
                self.fuse.bias.fill_(self.loglik["bias"])
            tag = self.readout.sep if (self.readout.layout == "segment" and self.readout.read_at_sep) else \
                (self.readout.step_tag or "")
            tag = tag.strip() if self.readout.layout == "tagged_text" else tag   # in context: the tag's own id
            self._n_tag = len(tokenizer(tag, add_special_tokens=False)["input_ids"]) if tag else 0

    def set_kv_cache(self, max_tokens: int) -> None:
        """Keep the keys/values of scored sequences (at most `max_tokens` positions, LRU; 0 = off), so a
        sequence extending a scored prefix runs only its new tokens (`lm.kv_prefix`). Classifier
        readouts only; `stats.tokens_scored` then counts the positions actually run."""
        if max_tokens and self._good_bad is not None:
            raise ValueError("the key/value prefix cache supports classifier readouts only, not "
                             f"{self.readout.name!r} (an LM-token head)")
        self.kv_store = KVPrefixStore(max_tokens) if max_tokens else None

    def set_packing(self, max_tokens: int) -> None:
        """Score whole traces packed into rows of at most `max_tokens` positions, no padding (0 = padded
        batches); the model is checked to keep packed sequences apart before the first packed forward."""
        if max_tokens and self.fuse is not None:
            raise InputError("packed scoring does not support the likelihood feature (its language model "
                             "runs on padded batches); score this PRM in padded batches", field="pack_tokens")
        if max_tokens and self.kv_store is not None:
            raise InputError("packed scoring and the key/value prefix cache exclude each other", field="pack_tokens")
        self.pack_tokens = max(0, int(max_tokens))

    def trainable(self):
        """The module whose parameters training updates (the backbone + head, and the fuse layer if any)."""
        import torch

        if self.fuse is None:
            return self.model
        return torch.nn.ModuleDict({"model": self.model, "fuse": self.fuse})

    # ------------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, path: str, readout: str | dict | Readout | None = None, num_labels: int = 2,
                        device: str = "", *, require_head: bool = False, trust_remote_code: bool = False,
                        dtype: str = "float32", **kw: Any) -> "DiscriminativePRM":
        """Load a saved prmkit PRM, an external PRM (name its `readout`), or a bare backbone (a new head);
        device "" = auto (`lm.resolve_device`). `require_head`: fail, instead of starting a random head,
        when the checkpoint has no weights for the scoring head (what `load_reward_model` asks for).
        `trust_remote_code`: run the checkpoint's own modeling code; a classifier PRM whose config maps
        only `AutoModel` to custom code (e.g. Qwen2.5-Math-PRM's two-layer `score` head) loads through it."""
        import torch

        device = resolve_device(device)

        from transformers import (
            AutoConfig,
            AutoModel,
            AutoModelForCausalLM,
            AutoModelForTokenClassification,
            AutoTokenizer,
        )

        saved = read_rm_config(path)
        r = get_readout(readout or saved.get("readout", "trl"))
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        r.check_tokenizer(tok, source=str(path))   # before the weights load
        load = dict(dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code, output_loading_info=True)
        if r.head == "lm_tokens":
            model, info = AutoModelForCausalLM.from_pretrained(path, **load)
        elif r.head == "value_head":   # Skywork: stock decoder + the v_head.summary tensors
            from prmkit.rewards.value_head import load_value_head_model

            model, info = load_value_head_model(path, dtype=load["dtype"])
        else:
            auto_map = getattr(AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code), "auto_map",
                               None) or {}
            if trust_remote_code and "AutoModel" in auto_map and "AutoModelForTokenClassification" not in auto_map:
                model, info = AutoModel.from_pretrained(path, **load)
            else:
                model, info = AutoModelForTokenClassification.from_pretrained(path, num_labels=num_labels, **load)
        if require_head:
            check_head_loaded(path, info, r.head, trust_remote_code)
        for key in ("aggregation", "threshold"):
            if key in saved and key not in kw:
                kw[key] = saved[key]
        kw.setdefault("meta", saved.get("meta", {}))
        if saved.get("loglik") and "loglik" not in kw:
            kw["loglik"] = saved["loglik"]
        if kw.get("loglik") is not None and kw.get("loglik_lm") is None:
                # a relative name is a folder inside the model dir (it travels with it, e.g. "loglik_lm")
            lm = load_path(kw["loglik"]["lm"], path)
            kw["loglik"] = {**kw["loglik"], "lm": lm}
            kw["loglik_lm"] = AutoModelForCausalLM.from_pretrained(resolve_ref(lm), dtype=getattr(torch, dtype)).to(device)
        fmt = kw.pop("prompt_format", None) or _model_format(path, r)
        rm = cls(model.to(device), tok, readout=r, **kw)
        rm.prompt_format = fmt
        return rm

    def save_pretrained(self, out: str | Path, extra: dict | None = None) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        cfg = {"kind": self.kind, "readout": self.readout.to_dict(), "aggregation": self.aggregation,
               "threshold": self.threshold, "meta": {**self.meta, **(extra or {})}}
        if self.fuse is not None:
            cfg["loglik"] = {"lm": stored_path(self.loglik["lm"], out), "weight": float(self.fuse.weight.item()),
                             "bias": float(self.fuse.bias.item())}
        write_rm_config(out, cfg)
        self.prompt_format.save(out)
        return out

    @property
    def num_parameters(self) -> int:
        # the likelihood LM runs on every scored token too
        extra = sum(p.numel() for p in self.loglik_lm.parameters()) + 2 if self.loglik_lm is not None else 0
        return sum(p.numel() for p in self.model.parameters()) + extra

    # ------------------------------------------------------------------------------- forward

    def encode_many(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[StepEncoding]:
        """Ids of each (problem, steps) under this model's prompt format and readout."""
        encs = self.readout.encode_many(self._pieces, render_all(self.prompt_format, prompts, self.tokenizer), steps)
        log_inputs("reward_model", self.tokenizer, encs)
        return encs

    def step_logits(self, input_ids, attention_mask, step_ends, prompt_lens=None, position_ids=None):
        """Log-odds of "step is good" at each step end: (B,S), 0 at padding. Differentiable (used in training).

        input_ids, attention_mask (B,T) right-padded; step_ends (B,S) long, -1 padding; prompt_lens
        (B,) long, each row's prompt length (needed only with the likelihood feature). Packed rows
        (`lm.packing`) pass position_ids restarting per sequence and attention_mask None.
        """
        import torch

        idx = step_ends.clamp(min=0)                                          # (B,S)
        # packed rows: no cache either (transformers reads packed position ids only without mask and cache)
        where = ({"attention_mask": attention_mask} if position_ids is None else
                 {"attention_mask": None, "position_ids": position_ids, "use_cache": False})
        if self._good_bad is not None:
            # LM-token readout: run the decoder, apply the LM head only at the read positions
            hidden = self._hidden(input_ids, where)                           # (B,T,H)
            h = hidden.gather(1, idx.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # (B,S,H)
            logits = self.model.get_output_embeddings()(h).float()           # (B,S,V)
            good, bad = self._good_bad
            out = logits[..., good] - logits[..., bad]                        # (B,S)
        else:
            res = self.model(input_ids=input_ids, **where)
            logits = res.logits if hasattr(res, "logits") else res[0]         # (B,T,C); custom heads: a tuple
            g = logits.gather(1, idx.unsqueeze(-1).expand(-1, -1, logits.shape[-1])).float()  # (B,S,C)
            out = self._head_logodds(g)                                       # (B,S)
        if self.fuse is not None:
            if prompt_lens is None:
                raise ValueError("step_logits with a likelihood feature needs prompt_lens")
            ll = self.step_loglik(input_ids, attention_mask, step_ends, prompt_lens)    # (B,S)
            out = out + self.fuse(ll.unsqueeze(-1)).squeeze(-1)
        return torch.where(step_ends >= 0, out, torch.zeros_like(out))

    def _head_logodds(self, g):
        """(..., C) classifier logits -> (...) log-odds of the positive class."""
        import torch

        pc = self.readout.positive_class
        if g.shape[-1] == 1:
            return g[..., 0]                                                  # one-logit head
        if g.shape[-1] == 2:
            return g[..., pc] - g[..., 1 - pc]                                # exact 2-class log-odds
        pos = torch.log_softmax(g, dim=-1)[..., pc]
        return pos - torch.log1p(-pos.exp().clamp(max=1 - 1e-7))              # log p - log(1-p)

    def step_loglik(self, input_ids, attention_mask, step_ends, prompt_lens, lp=None):
        """(B,S) summed log-likelihood of each step's tokens under the frozen likelihood LM, the read tag's
        tokens excluded (kept for a step with no tokens of its own); step k = the tokens after step
        k-1's read position up to its own read position (step 0 starts at token prompt_lens, (B,))."""
        import torch

        if lp is None:
            with torch.no_grad():
                lp = token_logprobs(self.loglik_lm, input_ids, attention_mask).float()  # (B,T-1) col t-1: token t
        B, T = input_ids.shape
        tok = torch.zeros(B, T, dtype=lp.dtype, device=lp.device)             # (B,T) log p of token t
        tok[:, 1:] = lp * attention_mask[:, 1:].to(lp.dtype)
        if self._n_tag:
            # a step's own tokens exclude its read tag; a step with no own tokens (empty) keeps its tag's
            # log-likelihood, so an empty response cannot score as a perfect one
            first = torch.cat([prompt_lens.to(step_ends.device).long().unsqueeze(1), step_ends[:, :-1] + 1], dim=1)
            own = step_ends - self._n_tag + 1 - first                        # (B,S) own tokens per step
            valid = (step_ends >= 0) & (own > 0)                             # (B,S)
            for j in range(self._n_tag):
                pos = (step_ends - j).clamp(min=0)                           # (B,S)
                tok.scatter_(1, pos, torch.where(valid, torch.zeros_like(pos, dtype=tok.dtype),
                                                 tok.gather(1, pos)))
        csum = tok.cumsum(dim=1)                                              # (B,T)
        at_end = csum.gather(1, step_ends.clamp(min=0))                       # (B,S)
        prev = torch.nn.functional.pad(at_end[:, :-1], (1, 0))                # (B,S) sum up to the previous read
        starts = prompt_lens.to(csum.device).long()                           # (B,) first token of step 0
        prev[:, 0] = csum.gather(1, (starts - 1).clamp(min=0).unsqueeze(1)).squeeze(1)  # prompt part
        ll = at_end - prev                                                    # (B,S)
        return torch.where(step_ends >= 0, ll, torch.zeros_like(ll))

    def _hidden(self, input_ids, where: dict):
        decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
        if decoder is None or decoder is self.model:
            out = self.model(input_ids=input_ids, output_hidden_states=True, **where)
            return out.hidden_states[-1]
        return decoder(input_ids=input_ids, **where).last_hidden_state

    def score(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        """P(step is good) for every step of every (prompt, steps) pair, one forward pass per trace."""
        encs = self.checked_encodings(prompts, steps)                        # before any forward pass
        if self.kv_store is not None:
            return score_cached(self, encs)
        out = score_packed(self, encs) if self.pack_tokens else self._score_padded(encs)
        self.stats.uncached_tokens += sum(self.prefix_cache.new_tokens(e.input_ids, [e.prompt_len] + [x + 1 for x in e.step_ends])
                                          for e in encs)
        self.stats.calls += 1
        self.stats.sequences += len(encs)
        return out

    def _score_padded(self, encs) -> list[list[float]]:
        """P(step is good) per step, from length-sorted right-padded batches of `batch_size` traces."""
        import torch

        out: list[list[float]] = [[] for _ in encs]
        with torch.inference_mode():
            for batch in length_sorted_batches([len(e.input_ids) for e in encs], self.batch_size):
                ids, attn, ends = pad_batch([encs[i] for i in batch], self.pad_id)
                dev = self.device
                plen = prompt_lengths([encs[i] for i in batch]).to(dev)                      # (B,)
                probs = torch.sigmoid(self.step_logits(ids.to(dev), attn.to(dev), ends.to(dev), plen)).cpu().tolist()  # (B,S)
                for row, i in enumerate(batch):
                    out[i] = probs[row][: len(encs[i].step_ends)]
                self.stats.tokens_scored += int(attn.sum())
        return out


def check_head_loaded(path: str, info: dict, head: str, trust_remote_code: bool) -> None:
    """Raise when loading left weights of the model uninitialised (the scoring head, typically): its
    scores would be random. `info` is transformers' `output_loading_info`."""
    missing = sorted(info.get("missing_keys") or [])
    if not missing:
        return
    # a causal LM's own LM head is expected to go unused; other unused weights mean another head layout
    unexpected = sorted(k for k in info.get("unexpected_keys") or [] if not k.startswith("lm_head."))
    hint = ("; the checkpoint holds weights the model class did not use (" + ", ".join(unexpected[:4]) +
            "): its head is probably custom code, so pass trust_remote_code=True (--trust-remote-code)"
            if unexpected and not trust_remote_code else
            "; if this is a base model, train a head first (prmkit train prm --model ...)")
    raise InputError(f"no weights for {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} "
                     f"(a {head} head): they would start random and so would every score{hint}",
                     file=str(path), field="weights")
