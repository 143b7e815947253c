"""A discriminative PRM's scores through the key/value prefix store (`--prm-kv-cache`): the same scores
as `DiscriminativePRM.score`, with only the tokens no kept prefix covers run through the backbone (and
the likelihood LM); identical sequences in one call are run once."""

from __future__ import annotations

from typing import Any

from prmkit.lm.batching import length_sorted_batches, pad_batch, prompt_lengths
from prmkit.lm.kv_prefix import Entry, prefix_hashes, run_suffixes


def _cached_rows(rm: Any, encs, batch) -> tuple[list, int]:
    """(per row of `batch`: its kv_prefix Entry, complete; positions run) — new tokens only, batched."""
    import torch

    items = []
    for i in batch:
        e = encs[i]
        ids = list(e.input_ids)
        h = prefix_hashes(ids)
        c, hit = rm.kv_store.find(ids, h)
        items.append((ids, h, [e.prompt_len] + [x + 1 for x in e.step_ends], c, hit))
    todo = [n for n, it in enumerate(items) if it[3] < len(it[0])]
    entries: list = [None] * len(items)
    for n, (ids, _, _, c, hit) in enumerate(items):
        if c == len(ids):                     # all of it kept: a view of the entry holding it
            entries[n] = Entry(ids, {}, {k: v[:c] for k, v in hit.arrays.items() if k != "next"})
    run = 0
    if todo:
        head = run_suffixes(rm.model, [items[n][0:1] + items[n][3:5] for n in todo], "head", rm.pad_id)
        # the likelihood LM re-runs the last kept position: its logits score the first new token
        lm = (run_suffixes(rm.loglik_lm, [(items[n][0], max(0, items[n][3] - 1), items[n][4]) for n in todo], "lm",
                           rm.pad_id) if rm.loglik_lm is not None else None)
        for j, n in enumerate(todo):
            ids, h, bounds, c, hit = items[n]
            lo = rm._head_logodds(head[j][0])                                              # (L-c,)
            arrays = {"lo": torch.cat([hit.arrays["lo"][:c], lo]) if c else lo}
            kv = {"head": head[j][1]}
            if lm is not None:
                logp = torch.log_softmax(lm[j][0], -1)                                     # (L-c'+..., V)
                nxt = torch.tensor(ids[max(1, c):], dtype=torch.long, device=logp.device)
                tok = logp[:len(nxt)].gather(-1, nxt.unsqueeze(-1)).squeeze(-1)            # tokens max(1,c)..L-1
                if c:
                    tok = torch.cat([hit.arrays["tok"][:c], tok])
                else:
                    tok = torch.cat([torch.zeros(1, device=tok.device), tok])              # token 0: no prediction
                arrays["tok"] = tok
                kv["lm"] = lm[j][1]
            entries[n] = Entry(ids, kv, arrays)
            rm.kv_store.put(entries[n], bounds, h)
            run += len(ids) - c
    return entries, run


def score_cached(rm: Any, encs) -> list[list[float]]:
    """`rm` is a `DiscriminativePRM` with a kv_store. `DiscriminativePRM.score` through the key/value prefix store: the same scores, new tokens only.
    Identical sequences in one call are run once (search scores many duplicate candidates)."""
    import torch

    out: list[list[float]] = [[] for _ in encs]
    first: dict[tuple, int] = {}
    twin = [first.setdefault((tuple(e.input_ids), tuple(e.step_ends)), i) for i, e in enumerate(encs)]
    uniq = sorted(set(twin))
    with torch.inference_mode():
        # shortest first: a sequence can reuse a shorter one scored earlier in the same call
        for part in reversed(length_sorted_batches([len(encs[i].input_ids) for i in uniq], rm.batch_size)):
            batch = [uniq[j] for j in part]
            entries, run = _cached_rows(rm, encs, batch)
            sub = [encs[i] for i in batch]
            ids, attn, ends = pad_batch(sub, rm.pad_id)
            dev = rm.device
            ends = ends.to(dev)
            T = ids.shape[1]
            lo = torch.zeros(len(sub), T, device=dev)
            for r, e in enumerate(entries):
                lo[r, :len(e.ids)] = e.arrays["lo"].to(dev)
            logit = lo.gather(1, ends.clamp(min=0))                                        # (B,S)
            if rm.fuse is not None:
                lp = torch.zeros(len(sub), T - 1, device=dev)                               # col t-1: token t
                for r, e in enumerate(entries):
                    lp[r, :len(e.ids) - 1] = e.arrays["tok"][1:].to(dev)
                ll = rm.step_loglik(ids.to(dev), attn.to(dev), ends, prompt_lengths(sub).to(dev), lp=lp)
                logit = logit + rm.fuse(ll.unsqueeze(-1)).squeeze(-1)
            probs = torch.sigmoid(logit).cpu().tolist()
            for row, i in enumerate(batch):
                out[i] = probs[row][: len(encs[i].step_ends)]
            rm.stats.tokens_scored += run
    for i, j in enumerate(twin):
        if i != j:
            out[i] = list(out[j])
    rm.stats.uncached_tokens += sum(rm.prefix_cache.new_tokens(e.input_ids, [e.prompt_len] + [x + 1 for x in e.step_ends])
                                    for e in encs)
    rm.stats.calls += 1
    rm.stats.sequences += len(encs)
    return out
