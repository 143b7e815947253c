# no `from __future__ import annotations` here: FastAPI must resolve the endpoint annotations at runtime
"""`prmkit serve`: any reward model behind an HTTP API, with request batching.

    prmkit serve --model runs/prm --port 8001 --token sekret
    curl -H 'Authorization: Bearer sekret' -d '{"prompts": ["Q:7,+3\\n"], "steps": [["7+3=10", "A:10"]]}' \\
         http://127.0.0.1:8001/score

`POST /score` takes `prompts` (strings) or `problems` (strings or objects with a `prompt` field)
and `steps` (one list of step strings per prompt); it answers one entry per item with the step
scores and their aggregate (`aggregation` in the body overrides the model's rule for that
request). `GET /health` names the model, its aggregation and parameter count, and the server's
counters.

Concurrent requests are coalesced: each request's items go into one queue, and a worker takes
what arrives within `batch_wait_ms` (up to `max_batch` items) and scores it with one call of the
model, in a thread so the server keeps accepting requests. A trace's scores do not depend on its
batch neighbours (an invariant of every prmkit reward model), so coalescing changes speed only.

Limits: bodies over `max_body_bytes` get 413 (checked on the Content-Length header and on the
bytes actually received), a missing or wrong bearer token 401 when `token` is set, and a body
that is not the expected JSON 422 with a message naming the field (`field 'steps[1][0]': ...`).
`prmkit.rewards.remote.RemoteRM` is the client; it implements the RewardModel protocol.
"""


import asyncio
import math
import time
from dataclasses import dataclass
from typing import Optional, Union

DEFAULT_MAX_BODY = 8 * 1024 * 1024


@dataclass
class ServeConfig:
    """Serve a reward model over HTTP (POST /score, GET /health)."""

    model: str = "gym-checker"
    """reward model dir or hub id (loaded with prmkit.rewards.load_reward_model), 'gym-prm' for the
    shipped gym PRM, or 'gym-checker' for the gym's exact checker"""
    host: str = "127.0.0.1"
    """bind address"""
    port: int = 8001
    """port"""
    aggregation: str = ""
    """step-score aggregation (min, prod, last, mean, sum); empty: the model's own"""
    token: str = ""
    """require this bearer token (empty: no auth)"""
    max_body_bytes: int = DEFAULT_MAX_BODY
    """largest accepted request body in bytes (larger: 413)"""
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


# ---------------------------------------------------------------------------------------------
# request-size limit (a pure ASGI middleware: it sees the raw bytes before anything parses them)


class BodyLimitMiddleware:
    """413 for a body longer than `max_bytes`, whether or not the client sent Content-Length."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._reject(send, int(length))
        body, more = b"", True
        while more:  # buffer up to the limit, then replay the body to the app
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._reject(send, len(body))
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _reject(self, send, size: int) -> None:
        import json

        payload = json.dumps({"detail": f"request body: {size} bytes is over the limit of "
                                        f"{self.max_bytes} bytes; send fewer items per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


# ---------------------------------------------------------------------------------------------
# request batching


class Batcher:
    """Coalesces concurrent score requests into model calls of up to `max_batch` items.

    The queue and its worker belong to the event loop that first uses them (test clients may run
    a fresh loop per request, so they are rebuilt when the loop changes). Model calls run one at a
    time in a worker thread: the model and its counters are shared.
    """

    def __init__(self, rm, max_batch: int = 64, wait_s: float = 0.005):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.rm, self.max_batch, self.wait_s = rm, max_batch, wait_s
        self.requests = 0
        self.batches = 0
        self.model_calls = 0
        self._loop = None
        self._queue: Optional[asyncio.Queue] = None
        self._worker: Optional[asyncio.Task] = None

    async def score(self, prompts: list, steps: list) -> list:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._run())
        future = loop.create_future()
        self.requests += 1
        await self._queue.put((prompts, steps, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._queue.get()]
            count = len(items[0][0])
            deadline = loop.time() + self.wait_s
            while count < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
                items.append(item)
                count += len(item[0])
            prompts = [p for item in items for p in item[0]]
            steps = [s for item in items for s in item[1]]
            self.batches += 1
            try:
                scores = await loop.run_in_executor(None, self._score_all, prompts, steps)
            except Exception as batch_error:  # noqa: BLE001 - one bad request must not fail its neighbours
                for p, s, future in items:
                    try:
                        if len(items) == 1:
                            raise batch_error
                        rows = await loop.run_in_executor(None, self._score_all, p, s)
                    except Exception as e:  # noqa: BLE001 - handed to this request only
                        if not future.done():
                            future.set_exception(e)
                    else:
                        if not future.done():
                            future.set_result(rows)
                continue
            start = 0
            for p, _, future in items:
                if not future.done():
                    future.set_result(scores[start:start + len(p)])
                start += len(p)

    def _score_all(self, prompts: list, steps: list) -> list:
        # items with no steps have no scores; the rest go to the model in chunks of max_batch
        keep = [i for i, s in enumerate(steps) if len(s) > 0]
        out: list = [[] for _ in prompts]
        for c in range(0, len(keep), self.max_batch):
            idx = keep[c:c + self.max_batch]
            self.model_calls += 1
            rows = self.rm.score([prompts[i] for i in idx], [steps[i] for i in idx])
            if len(rows) != len(idx):
                raise RuntimeError(f"reward model returned {len(rows)} rows for {len(idx)} items")
            for i, row in zip(idx, rows):
                out[i] = [float(v) for v in row]
        return out


# ---------------------------------------------------------------------------------------------


def _field_name(loc) -> str:
    """('body', 'steps', 1, 0) -> 'steps[1][0]'."""
    parts = [p for p in loc if p != "body"]
    name = ""
    for p in parts:
        name += f"[{p}]" if isinstance(p, int) else (f".{p}" if name else str(p))
    return name or "body"


def _finite(x: float):
    return x if math.isfinite(x) else None


def create_app(reward_model, max_body_bytes: int = DEFAULT_MAX_BODY, token: Optional[str] = None,
               max_batch: int = 64, batch_wait_ms: float = 5.0, model_name: str = "reward-model",
               aggregation: Optional[str] = None):
    """The FastAPI app serving `reward_model` (anything implementing the RewardModel protocol)."""
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict

    from prmkit.rewards.aggregate import AGGREGATIONS, aggregate

    default_how = aggregation or reward_model.aggregation
    if default_how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {default_how!r}; expected one of {sorted(AGGREGATIONS)}")

    class ProblemIn(BaseModel):
        model_config = ConfigDict(extra="allow")
        prompt: str

    class ScoreRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prompts: Optional[list[str]] = None
        problems: Optional[list[Union[str, ProblemIn]]] = None
        steps: list[list[str]]
        aggregation: Optional[str] = None

    app = FastAPI(title="prmkit reward server")
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    batcher = Batcher(reward_model, max_batch=max_batch, wait_s=batch_wait_ms / 1000.0)
    app.state.batcher = batcher
    app.state.reward_model = reward_model

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        msgs = []
        for e in errors[:5]:
            name = _field_name(e.get("loc", ()))
            msg = e.get("msg", "invalid")
            if e.get("type") == "json_invalid":
                msg = f"body is not valid JSON ({e.get('ctx', {}).get('error', msg)})"
                name = "body"
            msgs.append(f"field '{name}': {msg}")
        return JSONResponse(status_code=422, content={
            "detail": "; ".join(msgs),
            "errors": [{"field": _field_name(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                       for e in errors]})

    def check_auth(request: Request) -> None:
        if token and request.headers.get("authorization") != f"Bearer {token}":
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/health")
    def health() -> dict:
        stats = getattr(reward_model, "stats", None)
        return {"status": "ok", "model": model_name, "aggregation": default_how,
                "num_parameters": int(getattr(reward_model, "num_parameters", 0)),
                "max_batch": max_batch, "max_body_bytes": max_body_bytes,
                "requests": batcher.requests, "batches": batcher.batches, "model_calls": batcher.model_calls,
                "tokens_scored": int(getattr(stats, "tokens_scored", 0))}

    @app.post("/score", dependencies=[Depends(check_auth)])
    async def score(req: ScoreRequest) -> dict:
        if (req.prompts is None) == (req.problems is None):
            raise HTTPException(status_code=422, detail="field 'prompts': give exactly one of 'prompts' "
                                                        "(strings) or 'problems' (strings or {prompt: ...})")
        prompts = req.prompts if req.prompts is not None else [
            p if isinstance(p, str) else p.prompt for p in req.problems]
        key = "prompts" if req.prompts is not None else "problems"
        if len(req.steps) != len(prompts):
            raise HTTPException(status_code=422, detail=f"field 'steps': expected {len(prompts)} lists "
                                                        f"(one per item of '{key}'), got {len(req.steps)}")
        how = req.aggregation or default_how
        if how not in AGGREGATIONS:
            raise HTTPException(status_code=422, detail=f"field 'aggregation': expected one of "
                                                        f"{sorted(AGGREGATIONS)}, got {how!r}")
        t0 = time.perf_counter()
        try:
            rows = await batcher.score(list(prompts), [list(s) for s in req.steps])
        except ValueError as e:  # InputError included: the model refused this input
            raise HTTPException(status_code=422, detail=str(e)) from None
        results = []
        for row in rows:
            agg = aggregate(row, how) if row else None
            results.append({"step_scores": [_finite(v) for v in row],
                            "aggregate": _finite(agg) if agg is not None else None})
        stats = getattr(reward_model, "stats", None)
        return {"model": model_name, "aggregation": how, "results": results,
                "latency_s": time.perf_counter() - t0,
                "tokens_scored": int(getattr(stats, "tokens_scored", 0))}  # the server's running count

    return app


def load_reward_model(name: str, device: str = "", readout: str = "", trust_remote_code: bool = False,
                      dtype: str = ""):
    """'gym-checker' -> the gym's exact checker; 'gym-prm' -> the shipped gym PRM; anything else (a
    saved dir or hub id) -> `prmkit.rewards.load_reward_model`."""
    from prmkit.errors import InputError

    if name in ("gym-checker", ""):
        from prmkit.rewards.base import GymCheckerRM

        return GymCheckerRM()
    import prmkit.rewards as rewards

    from pathlib import Path

    path = Path(name).expanduser()
    if (path.is_absolute() or name.startswith((".", "~"))) and not path.is_dir():
        raise InputError(f"no reward-model directory at {name!r}", file=name, field="model")
    kw = {"device": device} if device else {}
    if name == "gym-prm" and hasattr(rewards, "default_gym_prm"):
        return rewards.default_gym_prm(**kw)
    loader = getattr(rewards, "load_reward_model", None)
    if loader is None:
        raise InputError("this prmkit has no saved-model loader (prmkit.rewards.load_reward_model); "
                         "use --model gym-checker", field="model")
    return loader(str(path) if path.is_dir() else name, **kw, **rewards.load_options(readout, trust_remote_code, dtype))


def run(cfg: ServeConfig) -> None:
    import uvicorn

    rm = load_reward_model(cfg.model, cfg.device, cfg.readout, cfg.trust_remote_code, cfg.dtype)
    app = create_app(rm, max_body_bytes=cfg.max_body_bytes, token=cfg.token or None, max_batch=cfg.max_batch,
                     batch_wait_ms=cfg.batch_wait_ms, model_name=cfg.model or "gym-checker",
                     aggregation=cfg.aggregation or None)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


# ---------------------------------------------------------------------------------------------
# the README's main job: this stage on the gym


def _start_in_thread(app, port: int):
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            return server, thread
        time.sleep(0.01)
    raise RuntimeError("the reward server did not start within 5 s")


def demo_stage(out_dir, seed: int) -> dict:
    """Serve a reward model over HTTP and use it as a remote client and as a TRL reward function.

    Samples 4 solutions for each of 48 gym test problems (shipped policy, T=1), starts the reward
    server in-process on the shipped gym PRM (the gym's exact checker when that is missing),
    scores every solution over HTTP from 4 client threads (requests of 8 solutions, coalesced by
    the server's batcher), checks the remote scores equal direct scoring, then ranks each problem's 4 solutions with the TRL adapter over the remote
    model (Best-of-4) beside majority-of-4. Writes a latency histogram.
    """
    from pathlib import Path

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is fastest on a shared machine
    try:
        return _demo(Path(out_dir), seed)
    finally:
        torch.set_num_threads(threads)


def _demo(out_dir, seed: int) -> dict:
    import socket
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    from prmkit.evaluate.metrics import majority_vote, select_argmax
    from prmkit.gym.task import GymGrader, make_split
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.hf import HFSampler
    from prmkit.policy.sample import default_policy
    from prmkit.rewards.base import GymCheckerRM
    from prmkit.rewards.remote import RemoteRM
    from prmkit.serve.trl_adapter import TRLRewardFunction
    from prmkit.steps import split_steps

    out_dir.mkdir(parents=True, exist_ok=True)
    problems = make_split("test", 48)
    sampler = HFSampler.from_pretrained(default_policy())
    groups = sampler.sample([p.prompt for p in problems],
                            SamplingParams(n=4, max_new_tokens=96, temperature=1.0, seed=seed))
    prompts = [p.prompt for p, g in zip(problems, groups) for _ in g]
    texts = [c.text for g in groups for c in g]
    steps = [split_steps(t) for t in texts]
    keep = [i for i, s in enumerate(steps) if s]

    try:  # the shipped gym PRM when it is there, else the exact checker
        from prmkit.rewards import default_gym_prm

        rm, model_name = default_gym_prm(), "gym-prm"
    except Exception:  # noqa: BLE001 - any reason it cannot load: fall back, and say so in the result
        rm, model_name = GymCheckerRM(aggregation="min"), "gym-checker"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, thread = _start_in_thread(create_app(rm, max_batch=64, batch_wait_ms=5.0, model_name=model_name),
                                      port)
    try:
        url = f"http://127.0.0.1:{port}"
        chunks = [keep[c:c + 8] for c in range(0, len(keep), 8)]
        clients = [RemoteRM(url) for _ in range(4)]
        latencies: list[float] = []

        def one(j: int) -> list:
            idx = chunks[j]
            t = time.perf_counter()
            rows = clients[j % 4].score([prompts[i] for i in idx], [steps[i] for i in idx])
            latencies.append(time.perf_counter() - t)
            return rows

        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            remote = [row for rows in pool.map(one, range(len(chunks))) for row in rows]
        wall = time.perf_counter() - t0
        direct = rm.score([prompts[i] for i in keep], [steps[i] for i in keep])
        max_diff = max((abs(a - b) for r, d in zip(remote, direct) for a, b in zip(r, d)), default=0.0)
        health = clients[0].health()
        reward = TRLRewardFunction(RemoteRM(url))  # the served model's own aggregation
        rewards = reward(prompts, texts)
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    grader = GymGrader()
    bon = maj = 0
    for g, p in enumerate(problems):
        lo = 4 * g
        answers = [grader.extract_answer(texts[lo + j]) for j in range(4)]
        best = select_argmax(rewards[lo:lo + 4])
        bon += bool(answers[best] is not None and grader.is_correct(answers[best], p.answer))
        voted = majority_vote(answers)
        maj += bool(voted is not None and grader.is_correct(voted, p.answer))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist([1000 * x for x in latencies], bins=20)
    ax.set_xlabel("request latency (ms), 8 solutions per request, 4 client threads")
    ax.set_ylabel("requests")
    ax.set_title(f"prmkit serve ({model_name})")
    fig.tight_layout()
    plot = out_dir / "serve_latency.png"
    fig.savefig(plot, dpi=100)
    plt.close(fig)
    return {
        "model": model_name, "aggregation": rm.aggregation, "problems": len(problems), "solutions": len(texts), "requests": len(chunks),
        "server_batches": int(health["batches"]), "server_model_calls": int(health["model_calls"]),
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p95_ms": 1000 * sorted(latencies)[max(0, int(0.95 * len(latencies)) - 1)],
        "solutions_per_s": len(keep) / wall, "max_abs_diff_remote_vs_direct": float(max_diff),
        "bon4_accuracy_trl_adapter": bon / len(problems), "majority4_accuracy": maj / len(problems),
        "plots": [str(plot)],
    }
