"""The forward step of the decode loop (`policy.decode`), over the key/value cache kinds it can use.

`DynamicStep` is the original loop's computation: a `DynamicCache` grown by one position per step, one
attention-mask column appended, finished rows dropped. Its layers are swapped for `GrowingLayer`s, which
keep keys/values in a buffer with room for the whole decode and return views of it: the tensors the
attention sees hold the same values with the same shapes as `torch.cat` would give (so outputs are
bit-identical), without copying the whole cache every step. `StaticStep` decodes into a preallocated
transformers `StaticCache` with one mask for all steps: fixed shapes, for CUDA graphs.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose keys/values are the first `n` positions of a preallocated buffer."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int):
        super().__init__()
        self.device, self.is_initialized = keys.device, True
        self._adopt(keys, values, keys.shape[-2] + room)

    def _adopt(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
        B, H, n, _ = keys.shape
        self._kb = keys.new_empty((B, H, capacity, keys.shape[-1]))
        self._vb = values.new_empty((B, values.shape[1], capacity, values.shape[-1]))
        self._kb[:, :, :n], self._vb[:, :, :n] = keys, values
        self._n = n
        self.keys, self.values = self._kb[:, :, :n], self._vb[:, :, :n]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        s = key_states.shape[-2]
        if self._n + s > self._kb.shape[2]:                      # out of room: a bigger buffer
            self._adopt(self.keys, self.values, 2 * (self._n + s))
        self._kb[:, :, self._n:self._n + s] = key_states
        self._vb[:, :, self._n:self._n + s] = value_states
        self._n += s
        self.keys, self.values = self._kb[:, :, :self._n], self._vb[:, :, :self._n]
        return self.keys, self.values

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._adopt(self.keys.repeat_interleave(repeats, 0), self.values.repeat_interleave(repeats, 0),
                    self._kb.shape[2])

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._kb, self._vb = self._kb[indices], self._vb[indices]
        self.keys, self.values = self._kb[:, :, :self._n], self._vb[:, :, :self._n]

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        self._adopt(self.keys, self.values, self._kb.shape[2])


def grow_in_place(cache, room: int) -> None:
    """Swap the plain `DynamicLayer`s of `cache` (not sliding-window ones) for `GrowingLayer`s with `room`
    more positions."""
    for i, layer in enumerate(cache.layers):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys.numel():
            cache.layers[i] = GrowingLayer(layer.keys, layer.values, room)


class DynamicStep:
    """The original loop's forward over a `DynamicCache`: one more mask column per step (a view of a mask
    built once), finished rows dropped from the cache (`select`), keys/values grown in place."""

    def __init__(self, model, cache_kw: str, cache, mask: torch.Tensor, pos: torch.Tensor, steps: int):
        grow_in_place(cache, steps)
        self.model, self.kw, self.cache, self.pos = model, cache_kw, cache, pos
        self.T = mask.size(1)
        self.mask_buf = torch.cat([mask, torch.ones_like(mask[:, :1]).expand(-1, steps)], -1)  # (R, T+steps)

    def select(self, keep: torch.Tensor) -> None:
        self.cache.batch_select_indices(keep)
        self.mask_buf, self.pos = self.mask_buf[keep], self.pos[keep]

    def __call__(self, nxt: torch.Tensor) -> torch.Tensor:
        self.T += 1
        self.pos = self.pos + 1                                                     # (A, 1)
        out = self.model(input_ids=nxt[:, None], attention_mask=self.mask_buf[:, :self.T], position_ids=self.pos,
                         use_cache=True, **{self.kw: self.cache})
        return out.logits[:, -1].float()


class StaticStep:
    """The forward over a preallocated `StaticCache` of prompt + `steps` positions: the prefill's keys and
    values are copied in once, the attention mask is built once for all steps (causality hides the future
    slots), every row runs every step; shapes never change, so a compiled `forward` (`compiled_forward`) can
    capture CUDA graphs."""

    def __init__(self, model, cache_kw: str, cache, mask: torch.Tensor, pos: torch.Tensor, steps: int,
                 forward=None):
        from transformers import StaticCache

        R, T = mask.shape
        self.cache = StaticCache(config=model.config, max_cache_len=T + steps)
        for i, layer in enumerate(cache.layers):
            self.cache.update(layer.keys, layer.values, i)
        self.kw, self.pos = cache_kw, pos
        self.mask = torch.cat([mask, torch.ones_like(mask[:, :1]).expand(R, steps)], -1)  # (R, T+steps)
        self.forward = forward or model.forward

    def select(self, keep: torch.Tensor) -> None:
        raise RuntimeError("StaticStep keeps every row (DecodeOptions.compact must be False)")

    def __call__(self, nxt: torch.Tensor) -> torch.Tensor:
        self.pos = self.pos + 1
        out = self.forward(input_ids=nxt[:, None], attention_mask=self.mask, position_ids=self.pos, use_cache=True,
                           **{self.kw: self.cache})
        return out.logits[:, -1].float()




def compiled_forward(model):
    """`model.forward` through `torch.compile(mode="reduce-overhead")` (CUDA graphs on GPU). Keep one per
    model: a new batch size or cache length recompiles (minutes on the first call), so it pays off on long
    runs of same-shaped calls."""
    return torch.compile(model.forward, mode="reduce-overhead")
