# no `from __future__ import annotations` here: FastAPI must resolve the endpoint annotations at runtime
"""`prmkit serve`: any reward model behind an HTTP API, with fair request batching and limits.

    prmkit serve --model runs/prm --port 8001 --token sekret
    curl -H 'Authorization: Bearer sekret' -d '{"prompts": ["Q:7,+3\\n"], "steps": [["7+3=10", "A:10"]]}' \\
         http://127.0.0.1:8001/score

`POST /score` takes `prompts` (strings) or `problems` (strings or objects with a `prompt` field)
and `steps` (one list of step strings per prompt); it answers one entry per item with the step
scores and their aggregate (`aggregation` in the body overrides the model's rule for that
request). `GET /health` says the server is up; with the token (or when none is set) it also names
the model, its aggregation, parameter count, limits and the server's counters.
Prompts are the problems' raw text: a model dir's saved prompt format (`prompt_format.json`, e.g. a
chat template) is applied by the model itself, as in `score`.

Concurrent requests share model calls round robin (`prmkit.serve.batcher`): a small request is in
the next model call even behind a 3,000-item one.

Limits (`ScoreLimits`, each an option of `prmkit serve`), checked before any scoring, every refusal
naming the field: the front door (`prmkit.serve.guard`) answers 401 for a missing or wrong token
before reading the body, 413 for a body over `max_body_bytes` and 408 for one not received within
`body_timeout_s`; then 413 for too many items or steps, a step or item over its character limit, or
a sequence over the model's context in tokens; 429 when the steps already queued pass
`max_queued_steps`; 422 for a body that is not the expected JSON (`field 'steps[1][0]': ...`).
`prmkit.rewards.remote.RemoteRM` is the client; it implements the RewardModel protocol.
`POST /get_reward` takes OpenRLHF's remote reward body (raw text, split server-side) behind the same
guard, limits and batcher (`prmkit.serve.openrlhf`).
"""


import math
import time
from dataclasses import dataclass
from typing import Optional, Union

from prmkit.serve.batcher import Batcher  # noqa: F401 - the batcher of this server
from prmkit.serve.guard import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY, GuardMiddleware, validation_handler


@dataclass
class ScoreLimits:
    """What one /score request may ask for (every refusal names the field)."""

    max_items: int = 1024
    """most items (prompt + steps) in one request (more: 413)"""
    max_steps: int = 4096
    """most steps in one request, all items together (more: 413)"""
    max_step_chars: int = 8192
    """most characters in one step (more: 413)"""
    max_item_chars: int = 65536
    """most characters in one item, prompt and steps together (more: 413)"""
    max_tokens: int = 0
    """most tokens in one item's sequence (0: the model's context length when it has one; -1: no check)"""
    max_queued_steps: int = 65536
    """admission limit: steps of requests not yet answered; a request past it gets 429 (one request alone always runs)"""
    max_body_bytes: int = DEFAULT_MAX_BODY
    """largest accepted request body in bytes (larger: 413)"""
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    """a body not received within this many seconds gets 408 and its connection closed"""


@dataclass
class ServeConfig(ScoreLimits):
    """Serve a reward model over HTTP (POST /score, GET /health)."""

    model: str = "gym-checker"
    """reward model: a saved dir or hub id, 'gym-prm' (or 'gym') for the shipped gym PRM, 'gym-checker' (or
    'checker[:flip_rate]') for the gym's exact checker (`prmkit.resolve`'s grammar)"""
    host: str = "127.0.0.1"
    """bind address"""
    port: int = 8001
    """port"""
    aggregation: str = ""
    """step-score aggregation (min, prod, last, mean, sum); empty: the model's own"""
    token: str = ""
    """require this bearer token (empty: no auth)"""
    max_batch: int = 64
    """most items (prompt + steps) scored in one model call"""
    batch_wait_ms: float = 5.0
    """how long the batcher waits for more requests before scoring what it has"""
    device: str = ""
    """device of a model loaded from a dir or hub id (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    dtype: str = "float32"
    """dtype of local models' weights (float32, bfloat16, float16)"""
    readout: str = ""
    """how to read an external PRM without prmkit_rm.json (trl, math-shepherd, qwen2.5-math-prm, rlhflow, ...)"""
    trust_remote_code: bool = False
    """run the model's own modeling code (needed by PRMs whose head is custom code, e.g. Qwen2.5-Math-PRM)"""
    raw_split: str = ""
    """POST /get_reward (OpenRLHF's --remote_rm_url): split raw responses by this prmkit.steps.split_solution
    mode (double_newline, newline, regex:<p>, step_markers); empty: on the model's step separator"""
    raw_strip: str = ""
    """POST /get_reward: comma-separated trailing strings cut off each raw response; empty: the model
    tokenizer's EOS and pad text"""
    pack_tokens: int = 0
    """a local discriminative PRM scores each model call's traces packed into rows of at most this many tokens,
    no padding (checked once that the model keeps packed traces apart); 0 = padded batches"""

    def limits(self) -> ScoreLimits:
        import dataclasses

        return ScoreLimits(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ScoreLimits)})


# ---------------------------------------------------------------------------------------------
# limits


class Refused(Exception):
    """A request the limits refuse: HTTP `status` and a message naming the field."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(f"field '{field}': {message}")
        self.status = status


def context_length(rm) -> Optional[int]:
    """The model's context in tokens (`max_position_embeddings`), None when it has none (a checker)."""
    config = getattr(getattr(rm, "model", None), "config", None)
    n = getattr(config, "max_position_embeddings", None)
    return n if isinstance(n, int) and n > 0 else None


def check_sizes(prompts: list, steps: list, key: str, limits: ScoreLimits) -> None:
    """Refused (413) for a request over a count or character limit."""
    if len(prompts) > limits.max_items:
        raise Refused(413, key, f"{len(prompts)} items is over the limit of {limits.max_items} per request")
    total = sum(len(s) for s in steps)
    if total > limits.max_steps:
        raise Refused(413, "steps", f"{total} steps is over the limit of {limits.max_steps} per request")
    for i, (p, ss) in enumerate(zip(prompts, steps)):
        chars = len(p)
        for j, step in enumerate(ss):
            if len(step) > limits.max_step_chars:
                raise Refused(413, f"steps[{i}][{j}]", f"a step of {len(step)} characters is over the limit "
                                                        f"of {limits.max_step_chars}")
            chars += len(step)
        if chars > limits.max_item_chars:
            raise Refused(413, f"steps[{i}]", f"an item of {chars} characters (prompt and steps) is over the "
                                              f"limit of {limits.max_item_chars}")


def check_tokens(rm, prompts: list, steps: list, limit: int) -> None:
    """Refused (413) for an item whose sequence, as the model encodes it, is over `limit` tokens."""
    encode = getattr(rm, "encode_many", None)
    keep = [i for i, s in enumerate(steps) if s]
    if encode is None or not keep:
        return
    encs = encode([prompts[i] for i in keep], [steps[i] for i in keep])
    for i, e in zip(keep, encs):
        if len(e.input_ids) > limit:
            raise Refused(413, f"steps[{i}]", f"a sequence of {len(e.input_ids)} tokens is over the model's "
                                              f"limit of {limit} tokens; send shorter items")


# ---------------------------------------------------------------------------------------------


def _finite(x: float):
    return x if math.isfinite(x) else None


def _score_request_model():
    """The pydantic model of a /score body (built on first use: pydantic is imported lazily)."""
    from pydantic import BaseModel, ConfigDict

    class ProblemIn(BaseModel):
        model_config = ConfigDict(extra="allow")
        prompt: str

    class ScoreRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prompts: Optional[list[str]] = None
        problems: Optional[list[Union[str, ProblemIn]]] = None
        steps: list[list[str]]
        aggregation: Optional[str] = None

    return ScoreRequest


def read_request(req, default_how: str) -> tuple:
    """(prompts, steps, the items' field name, aggregation) of a parsed body; Refused (422) when
    its parts do not fit together."""
    from prmkit.rewards.aggregate import AGGREGATIONS

    if (req.prompts is None) == (req.problems is None):
        raise Refused(422, "prompts", "give exactly one of 'prompts' (strings) or 'problems' (strings or "
                                      "{prompt: ...})")
    prompts = req.prompts if req.prompts is not None else [p if isinstance(p, str) else p.prompt for p in req.problems]
    key = "prompts" if req.prompts is not None else "problems"
    if len(req.steps) != len(prompts):
        raise Refused(422, "steps", f"expected {len(prompts)} lists (one per item of '{key}'), got {len(req.steps)}")
    how = req.aggregation or default_how
    if how not in AGGREGATIONS:
        raise Refused(422, "aggregation", f"expected one of {sorted(AGGREGATIONS)}, got {how!r}")
    return list(prompts), [list(s) for s in req.steps], key, how


def _results(rows: list, how: str) -> list:
    from prmkit.rewards.aggregate import aggregate

    out = []
    for row in rows:
        agg = aggregate(row, how) if row else None
        out.append({"step_scores": [_finite(v) for v in row], "aggregate": _finite(agg) if agg is not None else None})
    return out


def _health(rm, batcher, limits: ScoreLimits, model_name: str, how: str, token_limit: int) -> dict:
    stats = getattr(rm, "stats", None)
    return {"status": "ok", "model": model_name, "aggregation": how,
            "num_parameters": int(getattr(rm, "num_parameters", 0)), "max_batch": batcher.max_batch,
            "max_body_bytes": limits.max_body_bytes, "context_length": context_length(rm),
            "limits": {"max_items": limits.max_items, "max_steps": limits.max_steps,
                       "max_step_chars": limits.max_step_chars, "max_item_chars": limits.max_item_chars,
                       "max_tokens": token_limit or None, "max_queued_steps": limits.max_queued_steps},
            "requests": batcher.requests, "batches": batcher.batches, "model_calls": batcher.model_calls,
            "queued_steps": batcher.queued_steps, "tokens_scored": int(getattr(stats, "tokens_scored", 0))}


def create_app(reward_model, max_body_bytes: int = DEFAULT_MAX_BODY, token: Optional[str] = None,
               max_batch: int = 64, batch_wait_ms: float = 5.0, model_name: str = "reward-model",
               aggregation: Optional[str] = None, limits: Optional[ScoreLimits] = None, raw_format=None):
    """The FastAPI app serving `reward_model` (anything implementing the RewardModel protocol);
    `limits` (default `ScoreLimits()`) bound each request, its `max_body_bytes` replaced by the
    argument when `limits` is not given. `raw_format` (`prmkit.serve.openrlhf.RawTextFormat`, default
    the model's own) splits the raw text POST /get_reward receives."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError

    from prmkit.rewards.aggregate import AGGREGATIONS

    default_how = aggregation or reward_model.aggregation
    if default_how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {default_how!r}; expected one of {sorted(AGGREGATIONS)}")
    limits = limits or ScoreLimits(max_body_bytes=max_body_bytes)
    context = context_length(reward_model)
    token_limit = (context or 0) if limits.max_tokens == 0 else max(0, limits.max_tokens)
    ScoreRequest = _score_request_model()

    app = FastAPI(title="prmkit reward server")
    app.add_middleware(GuardMiddleware, max_bytes=limits.max_body_bytes, token=token,
                       body_timeout_s=limits.body_timeout_s)
    batcher = Batcher(reward_model, max_batch=max_batch, wait_s=batch_wait_ms / 1000.0)
    app.state.batcher = batcher
    app.state.reward_model = reward_model
    app.add_exception_handler(RequestValidationError, validation_handler)

    @app.get("/health")
    def health(request: Request) -> dict:
        if not getattr(request.state, "authenticated", True):
            return {"status": "ok"}
        return _health(reward_model, batcher, limits, model_name, default_how, token_limit)

    score_checked = checked_scorer(reward_model, batcher, limits, token_limit)

    @app.post("/score")
    async def score(req: ScoreRequest) -> dict:
        t0 = time.perf_counter()
        try:
            prompts, steps, key, how = read_request(req, default_how)
        except Refused as e:
            raise HTTPException(status_code=e.status, detail=str(e)) from None
        rows = await score_checked(prompts, steps, key)
        stats = getattr(reward_model, "stats", None)
        return {"model": model_name, "aggregation": how, "results": _results(rows, how),
                "latency_s": time.perf_counter() - t0,
                "tokens_scored": int(getattr(stats, "tokens_scored", 0))}  # the server's running count

    from prmkit.serve import openrlhf

    openrlhf.mount(app, score_checked, raw_format or openrlhf.model_format(reward_model), default_how)
    return app


def checked_scorer(reward_model, batcher, limits: ScoreLimits, token_limit: int):
    """`async score_checked(prompts, steps, key) -> step scores` after every limit and admission check
    (sizes, the queue of `limits.max_queued_steps`, each sequence within `token_limit`); a refusal is an
    HTTPException naming the field (429 with Retry-After when busy, 422 when the model refuses the input)."""
    from fastapi import HTTPException

    async def admit(prompts: list, steps: list, key: str) -> None:
        check_sizes(prompts, steps, key, limits)
        total = sum(len(s) for s in steps)
        if batcher.queued_steps and batcher.queued_steps + total > limits.max_queued_steps:
            raise Refused(429, "steps", f"the server is busy ({batcher.queued_steps} steps queued, limit "
                                        f"{limits.max_queued_steps}); retry later")
        if token_limit:
            await batcher.run(check_tokens, reward_model, prompts, steps, token_limit)

    async def score_checked(prompts: list, steps: list, key: str) -> list:
        try:
            await admit(prompts, steps, key)
            return await batcher.score(prompts, steps)
        except Refused as e:
            raise HTTPException(status_code=e.status, detail=str(e),
                                headers={"Retry-After": "1"} if e.status == 429 else None) from None
        except ValueError as e:  # InputError included: the model refused this input
            raise HTTPException(status_code=422, detail=str(e)) from None

    return score_checked


def load_reward_model(name: str, device: str = "", readout: str = "", trust_remote_code: bool = False,
                      dtype: str = ""):
    """The reward model `--model` names, in `prmkit.resolve`'s grammar ('gym-checker' = 'checker', 'gym-prm',
    a saved dir, a hub id, ...)."""
    from prmkit.resolve import parse_rm_spec

    return parse_rm_spec(name, "model").load(device=device, readout=readout, trust_remote_code=trust_remote_code,
                                              dtype=dtype)


def run(cfg: ServeConfig) -> None:
    import uvicorn

    from prmkit.data import SHIPPED_PRM_DIR
    from prmkit.resolve import GYM_PRM_NAMES
    from prmkit.rewards.discriminative_packed import apply_packing, check_packable
    from prmkit.serve.openrlhf import model_format

    if cfg.raw_split:
        from prmkit.steps import check_split_mode

        check_split_mode(cfg.raw_split)  # before the model loads
    if cfg.pack_tokens:
        check_packable(SHIPPED_PRM_DIR if (cfg.model or "gym-prm") in GYM_PRM_NAMES else cfg.model)  # before loading
    rm = load_reward_model(cfg.model, cfg.device, cfg.readout, cfg.trust_remote_code, cfg.dtype)
    apply_packing(rm, cfg.pack_tokens)
    app = create_app(rm, token=cfg.token or None, max_batch=cfg.max_batch, batch_wait_ms=cfg.batch_wait_ms,
                     model_name=cfg.model or "gym-prm", aggregation=cfg.aggregation or None, limits=cfg.limits(),
                     raw_format=model_format(rm, cfg.raw_split, cfg.raw_strip))
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
