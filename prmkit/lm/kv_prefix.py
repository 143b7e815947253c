"""Prefix key/value caching for step scoring with Hugging Face models.

Search scores a prefix, then the same prefix plus a new step, round after round. A serving stack with
prefix caching (vLLM, SGLang) runs only the new tokens; `KVPrefixStore` does the same for a local
model: every scored sequence leaves its keys/values (and the per-position outputs the scorer reads)
in a store bounded by tokens (least recently used first out), and a later sequence that starts with
a kept prefix runs only the tokens after it, attending to the kept keys/values. Prefixes are kept at
the same positions `rewards.base.PrefixCacheCounter` counts (the prompt end, each step end and every
position of the last step), found by rolling hashes of the exact token ids and checked token by token.

`run_suffixes` is the batched forward: rows with different cached lengths are left-padded in the
key/value dimension and right-padded in the new tokens; position ids continue each row's prefix,
so every row computes what a full forward pass over its whole sequence computes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

_MOD = (1 << 61) - 1
_BASE = 1_000_003


def prefix_hashes(ids: Sequence[int]) -> list[int]:
    """hashes[b] = rolling hash of ids[:b] (the same hash as `PrefixCacheCounter`)."""
    h, out = 0, [0] * (len(ids) + 1)
    for i, t in enumerate(ids):
        h = (h * _BASE + int(t) + 1) % _MOD
        out[i + 1] = h
    return out


def kept_lengths(n: int, boundaries: Sequence[int]) -> list[int]:
    """Prefix lengths a scored sequence of n tokens leaves cached: inner step boundaries and every
    position of the last step (as `PrefixCacheCounter`)."""
    inner = sorted(b for b in set(boundaries) if 0 < b < n)
    return sorted(set(inner) | set(range((inner[-1] if inner else 0) + 1, n + 1)))


@dataclass
class Entry:
    """What one scored sequence leaves: its ids, per model the per-layer (K, V) of every position
    (H, L, D), and per-position arrays the scorer reads (e.g. head log-odds, token log-probs)."""

    ids: list[int]
    kv: dict[str, list[tuple[Any, Any]]]
    arrays: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return len(self.ids)


class KVPrefixStore:
    """Entries of scored sequences, at most `max_tokens` positions in all (LRU eviction)."""

    def __init__(self, max_tokens: int = 1_000_000):
        self.max_tokens = max_tokens
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._index: dict[int, tuple[int, int]] = {}   # prefix hash -> (entry id, prefix length)
        self._next = 0
        self.tokens = 0

    def clear(self) -> None:
        self._entries.clear()
        self._index.clear()
        self.tokens = 0

    def find(self, ids: Sequence[int], hashes: Sequence[int] | None = None) -> tuple[int, Entry | None]:
        """The longest kept prefix of `ids`: (its length, the entry holding it), or (0, None)."""
        hashes = hashes or prefix_hashes(ids)
        for b in range(len(ids), 0, -1):
            hit = self._index.get(hashes[b])
            if hit is None:
                continue
            eid, length = hit
            entry = self._entries.get(eid)
            if entry is not None and length == b and entry.ids[:b] == list(ids[:b]):
                self._entries.move_to_end(eid)
                return b, entry
        return 0, None

    def put(self, entry: Entry, boundaries: Sequence[int], hashes: Sequence[int] | None = None) -> None:
        if entry.tokens > self.max_tokens:
            return
        hashes = hashes or prefix_hashes(entry.ids)
        eid, self._next = self._next, self._next + 1
        self._entries[eid] = entry
        self.tokens += entry.tokens
        for b in kept_lengths(entry.tokens, boundaries):
            self._index[hashes[b]] = (eid, b)
        while self.tokens > self.max_tokens and self._entries:
            _, old = self._entries.popitem(last=False)
            self.tokens -= old.tokens
        # index keys of evicted entries are dropped lazily: `find` checks that the entry still exists
        if len(self._index) > 8 * max(1, self.max_tokens):
            self._index = {h: v for h, v in self._index.items() if v[0] in self._entries}


def cache_kwarg(model) -> str:
    """The name of the key/value cache argument of `model.forward` (`cache` in newer transformers)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def prefill_rows(model, rows: Sequence[tuple[Sequence[int], int, "Entry | None"]], key: str, pad_id: int):
    """The batched forward of `run_suffixes`, returned raw: (logits (B,S,X) float32, the DynamicCache,
    attention mask (B, C+S) long, new-token counts per row, C). Row b's keys/values sit at columns
    [C - c_b, C + s_b) of the cache; its last new token's output is logits[b, s_b - 1]."""
    import torch
    from transformers import DynamicCache

    dev = next(model.parameters()).device
    B = len(rows)
    cs = [c for _, c, _ in rows]
    ss = [len(ids) - c for ids, c, _ in rows]
    C, S = max(cs), max(ss)
    ids_t = torch.full((B, S), pad_id, dtype=torch.long)
    mask = torch.zeros(B, C + S, dtype=torch.long)
    pos = torch.zeros(B, S, dtype=torch.long)
    for b, (ids, c, _) in enumerate(rows):
        ids_t[b, :ss[b]] = torch.tensor(list(ids[c:]), dtype=torch.long)
        mask[b, C - c:C + ss[b]] = 1
        pos[b] = c + torch.arange(S)
    cache = DynamicCache()
    if C:
        ref = next(e for _, c, e in rows if c)
        for layer in range(len(ref.kv[key])):
            k0 = ref.kv[key][layer][0]
            K = torch.zeros((B, k0.shape[0], C, k0.shape[-1]), dtype=k0.dtype, device=dev)
            V = torch.zeros_like(K)
            for b, (_, c, e) in enumerate(rows):
                if c:
                    k, v = e.kv[key][layer]
                    K[b, :, C - c:] = k[:, :c]
                    V[b, :, C - c:] = v[:, :c]
            cache.update(K, V, layer)
    out = model(input_ids=ids_t.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), use_cache=True,
                **{cache_kwarg(model): cache})
    logits = (out.logits if hasattr(out, "logits") else out[0]).float()           # (B,S,X)
    return logits, cache, mask.to(dev), ss, C


def row_kv(cache, b: int, c: int, s: int, C: int) -> list[tuple[Any, Any]]:
    """Row b's per-layer (K, V) of its c kept and s new positions, copied out of a `prefill_rows` cache."""
    import torch

    return [(torch.cat([L.keys[b, :, C - c:C], L.keys[b, :, C:C + s]], 1).clone(),
             torch.cat([L.values[b, :, C - c:C], L.values[b, :, C:C + s]], 1).clone()) for L in cache.layers]


def run_suffixes(model, rows: Sequence[tuple[Sequence[int], int, Entry | None]], key: str, pad_id: int):
    """One batched forward over the new tokens of each row (ids, cached length c, entry holding the
    first c positions of `key`'s model, or None when c = 0). Returns per row (the model's per-position
    output for positions c.., shape (L - c, X), float32; that row's full per-layer (K, V), (H, L, D))."""
    logits, cache, _, ss, C = prefill_rows(model, rows, key, pad_id)
    return [(logits[b, :ss[b]], row_kv(cache, b, c, ss[b], C)) for b, (_, c, _) in enumerate(rows)]
