"""The decode loop of `HFSampler`, with its whole sampling state on the model's device.

Generated ids, log-probabilities, top-k log-probabilities, lengths, done flags and finish reasons are
device tensors written in place each step; text is decoded once, at the end. Nothing is read back
to the host per token except, with `DecodeOptions.compact` (the CPU default), one done flag per step
to drop finished rows from the batch. Without compaction the loop reads the done flags only every
`check_every` steps, and can decode into a preallocated `StaticCache` whose fixed shapes let
`torch.compile` capture the step in CUDA graphs.

Sampling is inverse-CDF with one uniform per row and step. Each prompt has its own seeded generator and
its active rows take that stream's next uniforms in row order, step after step. A CPU generator's stream
does not depend on how its draws are split into calls, so all of a prompt's uniforms are drawn up front
(`uniform_table`) and handed out on the device (`take_uniforms`): the same numbers the per-step draws of
the original host loop gave, with no per-step generator call.

Stop strings are matched on the device: a row keeps the last L characters of its text (L = the longest
stop string) as code points, each token's decoded piece is appended from a per-vocabulary table
(`StopMatcher`), and a stop string ends the row when the buffer ends with it, the first listed winning,
exactly `text.endswith(s)` on the concatenated pieces. A stop string that is one special token's name
(e.g. "<|im_end|>", which decodes to no text) ends the row when that token is sampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

FINISH_LENGTH, FINISH_EOS = 0, 1
# finish code 2 + j: the text ended with stop string j; 2 + S + j: stop string j is a special token
# (a chat template's end of turn), sampled: it decodes to no text, so it is matched by id


@dataclass(frozen=True)
class DecodeOptions:
    """How `HFSampler` runs its decode loop (the outputs' distribution is the same for all)."""

    compact: bool = True
    """drop finished rows from the batch every step (one small host read per step). This is the computation
    of the original host loop, so on CPU the samples are bit-identical to it; the CPU default"""
    static_cache: bool = False
    """decode into a preallocated transformers `StaticCache` (needs `compact=False`): fixed shapes"""
    compile: bool = False
    """run the decode step through `torch.compile(mode="reduce-overhead")` (CUDA graphs; needs `static_cache`)"""
    check_every: int = 16
    """without compaction: read the done flags back every this many steps (the loop's only host syncs)"""

    def __post_init__(self):
        if self.static_cache and self.compact:
            raise ValueError("DecodeOptions: static_cache needs compact=False (a static cache keeps every row)")
        if self.compile and not self.static_cache:
            raise ValueError("DecodeOptions: compile needs static_cache=True (CUDA graphs need fixed shapes)")
        if self.check_every < 1:
            raise ValueError(f"DecodeOptions: check_every must be >= 1, got {self.check_every}")

    @staticmethod
    def for_device(device) -> "DecodeOptions":
        """The default: compaction on CPU (bit-identical to the original loop); on CUDA no per-token sync
        and a static cache (compile stays opt-in: its first call compiles for minutes)."""
        if torch.device(device).type == "cuda":
            return DecodeOptions(compact=False, static_cache=True)
        return DecodeOptions()


def uniform_table(gens: Sequence[torch.Generator], n: int, steps: int, device) -> torch.Tensor:
    """(P, n*steps) float32: every uniform prompt p's rows can take in `steps` steps, drawn from its stream."""
    return torch.stack([torch.rand(n * steps, generator=g) for g in gens]).to(device)


def take_uniforms(table: torch.Tensor, used: torch.Tensor, active: torch.Tensor, n: int):
    """Uniforms for one step: active row j of prompt p takes the stream's next value, in row order.
    table (P, M), used (P,) values taken so far, active (P*n,) bool -> ((P*n,) uniforms, new `used`);
    inactive rows get an unused value."""
    a = active.view(-1, n).long()                                   # (P, n)
    idx = (used[:, None] + a.cumsum(1) - 1).clamp(0, table.size(1) - 1)
    return table.gather(1, idx).view(-1), used + a.sum(1)


def draw(logits: torch.Tensor, u: torch.Tensor | None, temperature: float, top_p: float) -> torch.Tensor:
    """Next token per row: greedy at temperature 0, else the inverse CDF at u of the temperature/top-p
    distribution (top-p keeps the smallest most-likely set reaching mass top_p). logits (R, V), u (R,)."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits if temperature == 1.0 else logits / temperature, -1)  # (R, V)
    if top_p < 1.0:
        sp, idx = probs.sort(-1, descending=True)
        keep = (sp.cumsum(-1) - sp) < top_p
        probs = torch.zeros_like(probs).scatter(-1, idx, sp * keep)
    cdf = probs.cumsum(-1)                                           # (R, V)
    u = u * cdf[:, -1]
    return torch.searchsorted(cdf, u[:, None]).squeeze(-1).clamp(max=probs.size(-1) - 1)


class StopMatcher:
    """Stop strings matched on the device against the last L characters of each row's text."""

    def __init__(self, pieces: Sequence[str], stops: Sequence[str], device, special: dict[str, int] | None = None):
        """pieces[t]: token t's decoded text; `special`: special token name -> id (stops among them match by id)."""
        self.L = L = max(len(s) for s in stops)
        by_id = torch.full((len(pieces),), -1, dtype=torch.long)   # stop index of a special-token stop, by id
        for j in reversed(range(len(stops))):
            t = (special or {}).get(stops[j])
            if t is not None and 0 <= t < len(pieces):
                by_id[t] = j
        self.by_id = by_id.to(device)
        tail = torch.full((len(pieces), L), -1, dtype=torch.int32)   # last L chars of each piece, right-aligned
        plen = torch.zeros(len(pieces), dtype=torch.long)
        for t, s in enumerate(pieces):
            s = s[-L:] if L else ""
            if s:
                tail[t, L - len(s):] = torch.tensor([ord(ch) for ch in s], dtype=torch.int32)
                plen[t] = len(s)
        codes = torch.full((len(stops), L), -2, dtype=torch.int32)
        for j, s in enumerate(stops):
            if s:
                codes[j, L - len(s):] = torch.tensor([ord(ch) for ch in s], dtype=torch.int32)
        self.tail, self.plen, self.codes = tail.to(device), plen.to(device), codes.to(device)
        self.care = self.codes != -2                                  # (S, L) the positions a stop string fixes
        self.cols = torch.arange(L, device=device)

    def start(self, rows: int) -> torch.Tensor:
        return torch.full((rows, self.L), -1, dtype=torch.int32, device=self.tail.device)

    def push(self, buf: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
        """The last L characters after appending each row's token piece. buf (R, L), tok (R,)."""
        k = self.plen[tok][:, None]                                   # (R, 1)
        shifted = buf.gather(1, (self.cols[None] + k).clamp(max=self.L - 1))
        return torch.where(self.cols[None] < self.L - k, shifted, self.tail[tok])

    def id_hits(self, tok: torch.Tensor) -> torch.Tensor:
        """(R,) index of the special-token stop string each row's token is, -1 for none."""
        return self.by_id[tok]

    def hits(self, buf: torch.Tensor) -> torch.Tensor:
        """(R,) index of the first stop string the buffer ends with, -1 for none."""
        m = ((buf[:, None, :] == self.codes[None]) | ~self.care[None]).all(-1)  # (R, S)
        return torch.where(m.any(-1), m.int().argmax(-1), torch.full_like(m[:, 0], -1, dtype=torch.long))


@dataclass
class DecodeState:
    """The loop's outputs, indexed by original row: tokens/logprobs (R, S), tops (R, S, k) or None."""

    tokens: torch.Tensor
    logprobs: torch.Tensor
    lengths: torch.Tensor
    finish: torch.Tensor
    done: torch.Tensor
    top_v: torch.Tensor | None
    top_i: torch.Tensor | None
    buf: torch.Tensor | None

    @staticmethod
    def empty(R: int, S: int, k: int, matcher: StopMatcher | None, device) -> "DecodeState":
        z = dict(device=device)
        return DecodeState(torch.zeros((R, S), dtype=torch.long, **z), torch.zeros((R, S), **z),
                           torch.zeros(R, dtype=torch.long, **z), torch.zeros(R, dtype=torch.long, **z),
                           torch.zeros(R, dtype=torch.bool, **z),
                           torch.zeros((R, S, k), **z) if k else None,
                           torch.zeros((R, S, k), dtype=torch.long, **z) if k else None,
                           matcher.start(R) if matcher is not None else None)


def record(st: DecodeState, t: int, slots: torch.Tensor, logp: torch.Tensor, nxt: torch.Tensor, eos: int,
           matcher: StopMatcher | None, k: int) -> torch.Tensor:
    """Write step t's token of each batch slot (original row `slots`) and update its finish state; returns
    (A,) bool: the slot's row ended at this step."""
    active = ~st.done[slots]
    st.tokens[slots, t] = nxt
    st.logprobs[slots, t] = logp.gather(-1, nxt[:, None]).squeeze(-1)
    if k:
        v, i = logp.topk(k, -1)
        st.top_v[slots, t], st.top_i[slots, t] = v, i
    st.lengths[slots] += active.long()
    at_eos = nxt == eos                                                # eos < 0 when EOS does not stop
    code = torch.where(at_eos, FINISH_EOS, FINISH_LENGTH)
    if matcher is not None:
        buf = matcher.push(st.buf[slots], nxt)
        st.buf[slots] = buf
        hit, by_id = matcher.hits(buf), matcher.id_hits(nxt)
        code = torch.where(~at_eos & (hit >= 0), 2 + hit, code)
        code = torch.where(~at_eos & (by_id >= 0), 2 + matcher.codes.size(0) + by_id, code)
    ended = active & (code != FINISH_LENGTH)
    st.finish[slots] = torch.where(ended, code, st.finish[slots])
    st.done[slots] = st.done[slots] | ended
    return ended


def decode(step, logits: torch.Tensor, gens: Sequence[torch.Generator], params, eos: int,
           matcher: StopMatcher | None, opts: DecodeOptions, stats) -> DecodeState:
    """Sample up to `params.max_new_tokens` tokens for each of the R = P*n rows (row r belongs to prompt
    r // n, whose generator is gens[r // n]) from the prefill's next-token logits (R, V). `eos` < 0: EOS
    does not end a row. Counts `stats.generated_tokens` and the decode's `stats.forward_tokens`."""
    R, S, n = logits.size(0), params.max_new_tokens, params.n
    dev = logits.device
    k = min(params.top_logprobs, logits.size(-1))
    st = DecodeState.empty(R, S, k, matcher, dev)
    sampling = params.temperature != 0
    table = uniform_table(gens, n, S, dev) if sampling else None
    used = torch.zeros(len(gens), dtype=torch.long, device=dev)
    slots = torch.arange(R, device=dev)                              # original row of each batch slot
    can_end = eos >= 0 or matcher is not None
    for t in range(S):
        logp = torch.log_softmax(logits, -1)                         # (A, V)
        u = None
        if sampling:
            u, used = take_uniforms(table, used, ~st.done, n)
            u = u[slots] if opts.compact else u
        nxt = draw(logits, u, params.temperature, params.top_p)      # (A,)
        ended = record(st, t, slots, logp, nxt, eos, matcher, k)
        if opts.compact:
            stats.generated_tokens += slots.numel()
            if can_end and bool(ended.any()):
                keep = (~ended).nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                slots, nxt = slots[keep], nxt[keep]
                step.select(keep)
        elif t == S - 1 or (can_end and (t + 1) % opts.check_every == 0 and bool(st.done.all())):
            break
        logits = step(nxt)
        stats.forward_tokens += slots.numel()
    if not opts.compact:
        stats.generated_tokens += int(st.lengths.sum())
    return st


def teacher_forced_gap(model, prompt_ids: Sequence[Sequence[int]], groups, batch: int = 32) -> float:
    """The largest |sampled log-probability - teacher-forced log-probability| over every generated token of
    `groups` (per prompt, its Completions): one cache-free forward of prompt + tokens per sample, right-
    padded in batches. Sampling that draws from the model's own distribution gives ~0 (float noise of the
    device and dtype); a decode loop with a wrong cache, position or mask does not."""
    seqs = [(list(p), c) for p, g in zip(prompt_ids, groups) for c in g if c.token_ids]
    dev = next(model.parameters()).device
    worst = 0.0
    for b in range(0, len(seqs), batch):
        chunk = seqs[b:b + batch]
        T = max(len(p) + len(c.token_ids) for p, c in chunk)
        ids = torch.zeros((len(chunk), T), dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for i, (p, c) in enumerate(chunk):
            ids[i, :len(p) + len(c.token_ids)] = torch.tensor(p + list(c.token_ids))
            mask[i, :len(p) + len(c.token_ids)] = 1
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits.float(), -1)
        for i, (p, c) in enumerate(chunk):
            L = len(c.token_ids)
            pos = torch.arange(len(p) - 1, len(p) - 1 + L, device=dev)
            tf = logp[i, pos, torch.tensor(c.token_ids, device=dev)]
            worst = max(worst, float((tf.cpu() - torch.tensor(c.logprobs)).abs().max()))
    return worst
