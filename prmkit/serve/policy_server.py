# no `from __future__ import annotations` here: FastAPI must resolve the endpoint annotations at runtime
"""`prmkit serve-policy`: our HF sampler behind the OpenAI-compatible completions API.

The same wire format vLLM and SGLang serve, so `--sampler openai` code is tested here on CPU, and
labeling can fan out to several policy servers. `logprobs: k` (k <= 20) returns each token's
log-probability and, for k >= 1, the k most likely tokens at each position plus the sampled one
(`top_logprobs`, OpenAI's legacy layout), which GenPRM-style verdict scoring reads.
"""


import threading
import time
import uuid
from dataclasses import dataclass
from typing import Optional, Union


@dataclass
class ServePolicyConfig:
    """Serve a policy over the OpenAI-compatible /v1/completions API."""

    model: str = ""
    """policy dir or hub id (empty: the shipped gym policy)"""
    host: str = "127.0.0.1"
    """bind address"""
    port: int = 8000
    """port"""
    sep: str = "\n"
    """step separator"""
    batch_size: int = 64
    """rows decoded together"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    dtype: str = "float32"
    """dtype of local models' weights (float32, bfloat16, float16)"""
    trust_remote_code: bool = False
    """run the model's own modeling code (hub models whose architecture is custom code)"""
    api_key: str = ""
    """require this bearer token (empty: no auth)"""


def make_app(sampler, model_name: str, api_key: str = ""):
    from fastapi import Depends, FastAPI, HTTPException, Request
    from pydantic import BaseModel, Field

    from prmkit.policy.base import SamplingParams

    class CompletionRequest(BaseModel):
        model: Optional[str] = None
        prompt: Union[str, list[str]]
        n: int = Field(1, ge=1, le=256)
        max_tokens: int = Field(16, ge=1, le=4096)
        temperature: float = Field(1.0, ge=0.0)
        top_p: float = Field(1.0, gt=0.0, le=1.0)
        logprobs: Optional[int] = Field(None, ge=0, le=20)  # top-k per token, as vLLM (at most 20)
        seed: Optional[int] = None
        stop: Optional[Union[str, list[str]]] = None
        echo: bool = False
        ignore_eos: bool = False  # vLLM extension
        return_tokens_as_token_ids: bool = False  # vLLM extension
        prompt_seeds: Optional[list[int]] = None  # prmkit extension: one seed per prompt

    app = FastAPI(title="prmkit policy server")
    lock = threading.Lock()  # one generation at a time: the model and its counters are shared
    tok = sampler.tokenizer

    def check_auth(request: Request) -> None:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models", dependencies=[Depends(check_auth)])
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "prmkit"}]}

    @app.post("/v1/completions", dependencies=[Depends(check_auth)])
    def completions(req: CompletionRequest) -> dict:
        if req.echo:
            raise HTTPException(status_code=400, detail="field 'echo': not supported")
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        base = req.seed if req.seed is not None else int(time.time_ns() % 2**31)
        params = SamplingParams(n=req.n, max_new_tokens=req.max_tokens, temperature=req.temperature,
                                top_p=req.top_p, seed=base, stop=stop, ignore_eos=req.ignore_eos,
                                top_logprobs=req.logprobs or 0)
        seeds = req.prompt_seeds or [base * 1_000_003 + i for i in range(len(prompts))]
        if len(seeds) != len(prompts):
            raise HTTPException(status_code=422, detail=f"field 'prompt_seeds': expected {len(prompts)} seeds, "
                                                        f"got {len(seeds)}")
        with lock:
            groups = sampler.sample(prompts, params, seeds=seeds)
        choices, completion_tokens = [], 0
        for i, group in enumerate(groups):
            for j, c in enumerate(group):
                completion_tokens += len(c.token_ids)
                choice = {"index": i * req.n + j, "text": c.text, "finish_reason": c.finish_reason,
                          "stop_reason": c.stop, "logprobs": None}
                if req.logprobs is not None:
                    name = ((lambda t: f"token_id:{t}") if req.return_tokens_as_token_ids
                            else (lambda t: tok.decode([t])))
                    pieces = [tok.decode([t]) for t in c.token_ids]
                    offsets, pos = [], len(prompts[i])
                    for p in pieces:
                        offsets.append(pos)
                        pos += len(p)
                    top = None
                    if req.logprobs and c.top_logprobs is not None:
                        # OpenAI's legacy layout: per token {token: logprob}, the k most likely plus the sampled one
                        top = []
                        for t, lp, cands in zip(c.token_ids, c.logprobs, c.top_logprobs):
                            d: dict = {}
                            for tid, v in sorted({**cands, t: lp}.items(), key=lambda kv: -kv[1]):
                                d.setdefault(name(tid), v)  # two ids that decode alike: keep the likelier
                            top.append(d)
                    choice["logprobs"] = {"tokens": [name(t) for t in c.token_ids],
                                          "token_logprobs": c.logprobs, "top_logprobs": top, "text_offset": offsets}
                choices.append(choice)
        prompt_tokens = sum(len(tok(p)["input_ids"]) for p in prompts)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": model_name, "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    return app


def run(cfg: ServePolicyConfig) -> None:
    import uvicorn

    from prmkit.policy.sample import make_sampler

    sampler = make_sampler(cfg.model, "hf", sep=cfg.sep, batch_size=cfg.batch_size, device=cfg.device,
                           dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code)
    name = cfg.model or "prmkit-gym-policy"
    uvicorn.run(make_app(sampler, name, cfg.api_key), host=cfg.host, port=cfg.port, log_level="warning")
