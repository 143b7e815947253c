# no `from __future__ import annotations` here: FastAPI must resolve the endpoint annotations at runtime
"""`prmkit serve-policy`: our HF sampler behind the OpenAI-compatible completions and chat APIs.

The same wire format vLLM and SGLang serve, so `--sampler openai` code is tested here on CPU, and
labeling can fan out to several policy servers. `logprobs: k` (k <= 20) returns each token's
log-probability and, for k >= 1, the k most likely tokens at each position plus the sampled one
(`top_logprobs`, OpenAI's legacy layout), which GenPRM-style verdict scoring reads.

Limits (`CompletionLimits`, each an option), checked before any generation, every refusal naming
the field: the front door (`prmkit.serve.guard`) answers 401 for a missing or wrong key before
reading the body, 413 for a body over `max_body_bytes`, 408 for one not received in time; then 413
when prompts x n x max_tokens is over `max_request_tokens` or there are more than `max_prompts`
prompts, 422 when a prompt's tokens plus `max_tokens` pass the model's context, for a seed outside
64 bits and for a NaN or infinite temperature/top_p, and 429 when the work already admitted passes
`max_queued_tokens` (so one client cannot queue unbounded work ahead of the others). `/health` names
the model only to an authenticated client.

`/v1/chat/completions` renders the messages with the tokenizer's chat template
(`add_generation_prompt`, default true); with `continue_final_message: true` a last assistant
message is continued: the text is the template of the messages before it with the generation
prompt, then that message's content verbatim (the text `prompting.PromptFormat` renders for a
partial solution). The request's `seed` seeds its conversation's stream, so chat samples equal the
local sampler's for the same seed; the same limits apply (one prompt). The prompt-format options add
their stop strings to every request.

A prompt may be token ids instead of text (`prompt: [int, ...]` or a list of them, as OpenAI's API and
vLLM take), and `POST /tokenize` (vLLM's endpoint) returns a text's token ids: a multi-turn client
then keeps its context as the exact tokens sampled (a special token sampled inside an action has no
text, so re-tokenised text would lose it; `prmkit.agents.rollout`).
"""


import threading
import time
import uuid
from dataclasses import dataclass
from typing import Optional

from prmkit.prompting import PromptOptions
from prmkit.serve.guard import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY, GuardMiddleware, validation_handler
from prmkit.serve.openai_schema import (SEED_MAX, SEED_MIN, chat_request_model, completion_request_model,
                                        tokenize_request_model)


@dataclass
class CompletionLimits:
    """What one /v1/completions request may ask for (every refusal names the field)."""

    max_prompts: int = 256
    """most prompts in one request (more: 413)"""
    max_request_tokens: int = 1_048_576
    """most new tokens one request may ask for: prompts x n x max_tokens (more: 413)"""
    max_queued_tokens: int = 4_194_304
    """admission limit: new tokens asked for by requests not yet answered; a request past it gets 429"""
    max_body_bytes: int = DEFAULT_MAX_BODY
    """largest accepted request body in bytes (larger: 413)"""
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    """a body not received within this many seconds gets 408 and its connection closed"""


@dataclass
class ServePolicyConfig(CompletionLimits, PromptOptions):
    """Serve a policy over the OpenAI-compatible /v1/completions and /v1/chat/completions APIs."""

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


def context_length(sampler) -> Optional[int]:
    """The policy's context in tokens (`max_position_embeddings`), None when unknown."""
    n = getattr(getattr(getattr(sampler, "model", None), "config", None), "max_position_embeddings", None)
    return n if isinstance(n, int) and n > 0 else None


def check_request(req, prompts: list, seeds: list, limits: CompletionLimits, prompt_tokens: list,
                  context: Optional[int]) -> int:
    """The new tokens a request asks for; HTTPException (413/422, naming the field) when refused."""
    from fastapi import HTTPException

    if len(prompts) > limits.max_prompts:
        raise HTTPException(413, f"field 'prompt': {len(prompts)} prompts is over the limit of {limits.max_prompts}")
    if len(seeds) != len(prompts):
        raise HTTPException(422, f"field 'prompt_seeds': expected {len(prompts)} seeds, got {len(seeds)}")
    bad = next((s for s in seeds if not SEED_MIN <= s <= SEED_MAX), None)
    if bad is not None:
        name = "prompt_seeds" if req.prompt_seeds else "seed"
        raise HTTPException(422, f"field '{name}': seed {bad} (per prompt: seed x 1000003 + index) is outside "
                                 "64 bits; use a smaller seed")
    if context is not None:
        for i, n in enumerate(prompt_tokens):
            if n + req.max_tokens > context:
                raise HTTPException(422, f"field 'max_tokens': prompt {i} has {n} tokens, and {n} + "
                                         f"{req.max_tokens} new tokens is over the model's context of {context}; "
                                         f"ask for at most {max(0, context - n)}")
    asked = len(prompts) * req.n * req.max_tokens
    if asked > limits.max_request_tokens:
        raise HTTPException(413, f"field 'max_tokens': prompts x n x max_tokens = {len(prompts)} x {req.n} x "
                                 f"{req.max_tokens} = {asked} is over the limit of {limits.max_request_tokens} "
                                 "per request")
    return asked


def make_app(sampler, model_name: str, api_key: str = "", limits: Optional[CompletionLimits] = None):
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError

    CompletionRequest, TokenizeRequest, ChatRequest = completion_request_model(), tokenize_request_model(), \
        chat_request_model()
    limits = limits or CompletionLimits()
    app = FastAPI(title="prmkit policy server")
    app.add_middleware(GuardMiddleware, max_bytes=limits.max_body_bytes, token=api_key or None,
                       body_timeout_s=limits.body_timeout_s)
    app.add_exception_handler(RequestValidationError, validation_handler)
    admitted = Admission(limits.max_queued_tokens)
    tok = sampler.tokenizer
    context = context_length(sampler)
    encode = getattr(sampler, "encode_prompt", None) or (lambda p: tok(p)["input_ids"])

    @app.get("/health")
    def health(request: Request) -> dict:
        if not getattr(request.state, "authenticated", True):
            return {"status": "ok"}
        return {"status": "ok", "model": model_name, "context_length": context, "queued_tokens": admitted.queued}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "prmkit"}]}

    @app.post("/tokenize")
    def tokenize(req: TokenizeRequest) -> dict:
        ids = encode(req.prompt) if req.add_special_tokens else tok(req.prompt, add_special_tokens=False)["input_ids"]
        return {"tokens": list(ids), "count": len(ids), "max_model_len": context}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict:
        return completion_response(sampler, model_name, req, encode, limits, context, admitted)

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatRequest) -> dict:
        return chat_response(sampler, model_name, req, encode, limits, context, admitted)

    return app


class Admission:
    """Runs a request's generation under one lock (the model and its counters are shared) once the new
    tokens it asks for fit the admission limit; else 429 (one request alone is always admitted)."""

    def __init__(self, max_queued_tokens: int):
        self.max_queued_tokens = max_queued_tokens
        self.queued = 0  # new tokens asked for by admitted requests not yet answered
        self._lock, self._admission = threading.Lock(), threading.Lock()

    def __call__(self, asked: int, work):
        from fastapi import HTTPException

        with self._admission:
            busy = self.queued and self.queued + asked > self.max_queued_tokens
            queued = self.queued
            if not busy:
                self.queued += asked
        if busy:
            raise HTTPException(429, f"field 'max_tokens': the server is busy ({queued} new tokens queued, "
                                     f"limit {self.max_queued_tokens}); retry later", headers={"Retry-After": "1"})
        try:
            with self._lock:
                return work()
        finally:
            with self._admission:
                self.queued -= asked


def completion_response(sampler, model_name: str, req, encode, limits: CompletionLimits, context, admitted) -> dict:
    """/v1/completions: sample every prompt (text or token ids) `req.n` times, within the limits."""
    from fastapi import HTTPException

    from prmkit.policy.base import SamplingParams

    tok = sampler.tokenizer
    if req.echo:
        raise HTTPException(status_code=400, detail="field 'echo': not supported")
    prompts = _prompt_list(req.prompt)
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    base = req.seed if req.seed is not None else int(time.time_ns() % 2**31)
    params = SamplingParams(n=req.n, max_new_tokens=req.max_tokens, temperature=req.temperature,
                            top_p=req.top_p, seed=base, stop=stop, ignore_eos=req.ignore_eos,
                            top_logprobs=req.logprobs or 0)
    seeds = req.prompt_seeds or [base * 1_000_003 + i for i in range(len(prompts))]
    if len(prompts) > limits.max_prompts:  # before tokenizing them
        raise HTTPException(413, f"field 'prompt': {len(prompts)} prompts is over the limit of {limits.max_prompts}")
    prompt_ids = [p if isinstance(p, list) else encode(p) for p in prompts]
    bad = next((i for i, ids in enumerate(prompt_ids) if not ids or not all(0 <= t < len(tok) for t in ids)), None)
    if bad is not None:
        raise HTTPException(422, f"field 'prompt': prompt {bad} is empty or has a token id outside the "
                                 f"vocabulary of {len(tok)}")
    asked = check_request(req, prompts, seeds, limits, [len(ids) for ids in prompt_ids], context)
    groups = admitted(asked, lambda: _sample(sampler, prompts, prompt_ids, params, seeds))
    name = (lambda t: f"token_id:{t}") if req.return_tokens_as_token_ids else (lambda t: tok.decode([t]))
    choices = [completion_choice(i * req.n + j, c, prompts[i], tok, name, req.logprobs)
               for i, group in enumerate(groups) for j, c in enumerate(group)]
    completion_tokens = sum(len(c.token_ids) for group in groups for c in group)
    prompt_tokens = sum(len(ids) for ids in prompt_ids)
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model_name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def completion_choice(index: int, c, prompt, tok, name, logprobs: Optional[int]) -> dict:
    """One completion choice in OpenAI's legacy layout: with `logprobs`, the tokens, their log-probs, their
    text offsets (from the end of a text prompt) and, for k >= 1, per token {token: logprob} of the k
    most likely plus the sampled one."""
    choice = {"index": index, "text": c.text, "finish_reason": c.finish_reason, "stop_reason": c.stop,
              "logprobs": None}
    if logprobs is None:
        return choice
    offsets, pos = [], len(prompt) if isinstance(prompt, str) else 0
    for p in (tok.decode([t]) for t in c.token_ids):
        offsets.append(pos)
        pos += len(p)
    top = None
    if logprobs and c.top_logprobs is not None:
        top = []
        for t, lp, cands in zip(c.token_ids, c.logprobs, c.top_logprobs):
            d: dict = {}
            for tid, v in sorted({**cands, t: lp}.items(), key=lambda kv: -kv[1]):
                d.setdefault(name(tid), v)  # two ids that decode alike: keep the likelier
            top.append(d)
    choice["logprobs"] = {"tokens": [name(t) for t in c.token_ids], "token_logprobs": c.logprobs,
                          "top_logprobs": top, "text_offset": offsets}
    return choice


def chat_response(sampler, model_name: str, req, encode, limits: CompletionLimits, context, admitted) -> dict:
    """/v1/chat/completions: sample from the chat-template text of the messages (one conversation)."""
    from fastapi import HTTPException

    from prmkit.policy.base import SamplingParams

    tok = sampler.tokenizer
    try:
        text = chat_text(tok, req.messages, req.add_generation_prompt, req.continue_final_message)
    except ValueError as e:
        raise HTTPException(status_code=422, detail=f"field 'messages': {e}") from None
    max_new = req.max_completion_tokens or req.max_tokens or 16
    n_prompt = len(encode(text))
    if context is not None and n_prompt + max_new > context:
        raise HTTPException(422, f"field 'max_tokens': the conversation has {n_prompt} tokens, and {n_prompt} + "
                                 f"{max_new} new tokens is over the model's context of {context}; ask for at most "
                                 f"{max(0, context - n_prompt)}")
    asked = req.n * max_new
    if asked > limits.max_request_tokens:
        raise HTTPException(413, f"field 'max_tokens': n x max_tokens = {req.n} x {max_new} = {asked} is over the "
                                 f"limit of {limits.max_request_tokens} per request")
    seed = req.seed if req.seed is not None else int(time.time_ns() % 2**31)
    params = SamplingParams(n=req.n, max_new_tokens=max_new, temperature=req.temperature, top_p=req.top_p,
                            seed=seed, stop=[req.stop] if isinstance(req.stop, str) else list(req.stop or []),
                            ignore_eos=req.ignore_eos, top_logprobs=req.top_logprobs or 0)
    group = admitted(asked, lambda: sampler.sample([text], params, seeds=[seed])[0])
    name = (lambda t: f"token_id:{t}") if req.return_tokens_as_token_ids else (lambda t: tok.decode([t]))
    choices = [chat_choice(j, c, name, req.logprobs, req.top_logprobs or 0) for j, c in enumerate(group)]
    completion_tokens = sum(len(c.token_ids) for c in group)
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model_name, "choices": choices,
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": completion_tokens,
                      "total_tokens": n_prompt + completion_tokens}}


def chat_text(tokenizer, messages: list, add_generation_prompt: bool = True, continue_final_message: bool = False) -> str:
    """The model input of a chat request: the tokenizer's chat template over `messages`; with
    `continue_final_message`, the template of the messages before the last (assistant) one with the
    generation prompt, then its content verbatim."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this model's tokenizer has no chat template; use /v1/completions")
    if not messages or not all(isinstance(m, dict) and isinstance(m.get("role"), str)
                               and isinstance(m.get("content"), str) for m in messages):
        raise ValueError("expected a non-empty list of {role: str, content: str}")
    if continue_final_message:
        if messages[-1]["role"] != "assistant":
            raise ValueError("continue_final_message needs a last message with role 'assistant'")
        head = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        return head + messages[-1]["content"]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def chat_choice(index: int, c, name, logprobs: bool, top_k: int) -> dict:
    """One chat choice in OpenAI's layout (`logprobs.content[i]` = {token, logprob, top_logprobs})."""
    choice = {"index": index, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason,
              "stop_reason": c.stop, "logprobs": None}
    if logprobs:
        content = []
        for k, (t, lp) in enumerate(zip(c.token_ids, c.logprobs)):
            cands = (c.top_logprobs[k] if c.top_logprobs is not None else {}) if top_k else {}
            top = [{"token": name(tid), "logprob": v} for tid, v in sorted(cands.items(), key=lambda kv: -kv[1])]
            content.append({"token": name(t), "logprob": lp, "top_logprobs": top})
        choice["logprobs"] = {"content": content}
    return choice


def _prompt_list(prompt) -> list:
    """The request's prompts: each a text or a list of token ids."""
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(t, int) for t in prompt):
        return [list(prompt)]
    return list(prompt)


def _sample(sampler, prompts: list, prompt_ids: list, params, seeds: list) -> list:
    """Text prompts through `sampler.sample`, token-id prompts through `sampler.sample_ids` (same streams)."""
    if all(isinstance(p, str) for p in prompts):
        return sampler.sample(prompts, params, seeds=seeds)
    per_chunk = max(1, getattr(sampler, "batch_size", 64) // max(1, params.n))
    out: list = []
    for c in range(0, len(prompts), per_chunk):
        out += sampler.sample_ids(prompt_ids[c:c + per_chunk], params, list(seeds[c:c + per_chunk]))
    return out


def run(cfg: ServePolicyConfig) -> None:
    import uvicorn

    from prmkit.policy.sample import make_sampler
    from prmkit.resolve import default_policy

    sampler = make_sampler(cfg.model or default_policy(), "hf", sep=cfg.sep, batch_size=cfg.batch_size,
                           device=cfg.device,
                           dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code, prompt_options=cfg)
    name = cfg.model or "prmkit-gym-policy"
    import dataclasses

    limits = CompletionLimits(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(CompletionLimits)})
    uvicorn.run(make_app(sampler, name, cfg.api_key, limits), host=cfg.host, port=cfg.port, log_level="warning")
