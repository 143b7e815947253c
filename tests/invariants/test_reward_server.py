"""`prmkit serve`: scores over HTTP equal the model's own, concurrent requests are coalesced, and
the limits answer 413 (body too large), 401 (wrong token) and 422 (malformed, naming the field)."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from prmkit.errors import InputError
from prmkit.gym.task import make_split, parse_prompt
from prmkit.rewards.aggregate import aggregate
from prmkit.gym.checker_rm import GymCheckerRM
from prmkit.rewards.remote import RemoteRM
from prmkit.serve.reward_server import create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(n: int = 6):
    """Gym prompts with a mix of right and wrong steps (the gold solution, with one step broken)."""
    problems = make_split("test", n)
    prompts, steps = [], []
    for i, p in enumerate(problems):
        ss = parse_prompt(p.prompt).solution_steps()
        if i % 2:  # break step 1: a wrong result
            lhs, res = ss[min(1, len(ss) - 1)].split("=")
            ss[min(1, len(ss) - 1)] = f"{lhs}={int(res) + 1}"
        prompts.append(p.prompt)
        steps.append(ss)
    return prompts, steps


class SlowRM(GymCheckerRM):
    """The gym checker, slowed down and recording the size of every call (to see coalescing)."""

    def __init__(self, delay: float = 0.0, **kw):
        super().__init__(**kw)
        self.delay, self.call_sizes = delay, []

    def score(self, prompts, steps):
        self.call_sizes.append(len(prompts))
        time.sleep(self.delay)
        return super().score(prompts, steps)


@pytest.fixture()
def client():
    from fastapi.testclient import TestClient

    rm = GymCheckerRM(aggregation="mean", flip_rate=0.3, seed=1)
    with TestClient(create_app(rm, max_body_bytes=4096, token="sekret", max_batch=4)) as c:
        yield c, rm


AUTH = {"Authorization": "Bearer sekret"}


def test_score_equals_the_model_called_directly(client):
    c, _ = client
    prompts, steps = _batch(6)
    r = c.post("/score", json={"prompts": prompts, "steps": steps}, headers=AUTH)
    assert r.status_code == 200, r.text
    data = r.json()
    direct = GymCheckerRM(aggregation="mean", flip_rate=0.3, seed=1).score(prompts, steps)
    assert [res["step_scores"] for res in data["results"]] == direct
    # the aggregate is the model's rule (mean), and a per-request override is really used
    assert [res["aggregate"] for res in data["results"]] == [sum(d) / len(d) for d in direct]
    r = c.post("/score", json={"problems": [{"prompt": p, "id": str(i)} for i, p in enumerate(prompts)],
                               "steps": steps, "aggregation": "min"}, headers=AUTH)
    assert [res["aggregate"] for res in r.json()["results"]] == [min(d) for d in direct]
    assert r.json()["aggregation"] == "min"
    # max_batch=4: six items are scored in two model calls
    assert c.get("/health", headers=AUTH).json()["model_calls"] >= 2


def test_item_without_steps_has_no_aggregate(client):
    c, _ = client
    prompts, steps = _batch(2)
    r = c.post("/score", json={"prompts": prompts, "steps": [steps[0], []]}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["results"][1] == {"step_scores": [], "aggregate": None}
    assert len(r.json()["results"][0]["step_scores"]) == len(steps[0])


def test_oversized_body_is_413(client):
    c, _ = client
    prompts, steps = _batch(2)
    big = {"prompts": prompts, "steps": [steps[0], ["1+1=2"] * 1000]}
    r = c.post("/score", json=big, headers=AUTH)
    assert r.status_code == 413
    assert "4096" in r.json()["detail"]


def test_oversized_chunked_body_is_413_on_a_live_server():
    """No Content-Length (chunked upload): the limit is enforced on the bytes received."""
    import uvicorn

    app = create_app(GymCheckerRM(), max_body_bytes=2048)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.02)
        body = json.dumps({"prompts": ["Q:1,+1\n"], "steps": [["1+1=2"] * 1000]}).encode()

        def chunks():
            for i in range(0, len(body), 500):
                yield body[i:i + 500]

        r = httpx.post(f"http://127.0.0.1:{port}/score", content=chunks(),
                       headers={"content-type": "application/json"})
        assert r.status_code == 413
        small = json.dumps({"prompts": ["Q:1,+1\n"], "steps": [["1+1=2", "A:2"]]}).encode()
        r = httpx.post(f"http://127.0.0.1:{port}/score", content=iter([small[:10], small[10:]]),
                       headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["results"][0]["step_scores"] == [1.0, 1.0]
    finally:
        server.should_exit = True
        th.join(timeout=10)


def test_wrong_or_missing_token_is_401(client):
    c, _ = client
    body = {"prompts": ["Q:1,+1\n"], "steps": [["1+1=2"]]}
    assert c.post("/score", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.post("/score", json=body).status_code == 401
    assert c.get("/health").status_code == 200  # health needs no token


@pytest.mark.parametrize("body, field", [
    ({"prompts": ["Q:1,+1\n"], "steps": [["1+1=2", 3]]}, "steps[0][1]"),
    ({"prompts": ["Q:1,+1\n"], "steps": "1+1=2"}, "steps"),
    ({"prompts": ["Q:1,+1\n"]}, "steps"),
    ({"prompts": ["Q:1,+1\n"], "steps": [["1+1=2"]], "extra": 1}, "extra"),
    ({"prompts": ["Q:1,+1\n", "Q:2,+2\n"], "steps": [["1+1=2"]]}, "steps"),
    ({"steps": [["1+1=2"]]}, "prompts"),
    ({"prompts": ["Q:1,+1\n"], "steps": [["1+1=2"]], "aggregation": "max"}, "aggregation"),
    ({"problems": [{"id": "x"}], "steps": [["1+1=2"]]}, "problems[0]"),
])
def test_malformed_json_is_422_naming_the_field(client, body, field):
    c, _ = client
    r = c.post("/score", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert f"field '{field}" in r.json()["detail"], r.json()["detail"]


def test_invalid_json_syntax_is_422(client):
    c, _ = client
    r = c.post("/score", content=b'{"prompts": ["Q:1,+1\\n"], "steps": [[', headers={**AUTH, "content-type":
                                                                                      "application/json"})
    assert r.status_code == 422
    assert "field 'body'" in r.json()["detail"] and "JSON" in r.json()["detail"]


@pytest.fixture(scope="module")
def live_server():
    """A uvicorn server in a thread, over a slow model, so concurrent requests pile up."""
    import uvicorn

    rm = SlowRM(delay=0.3, aggregation="min")
    app = create_app(rm, token="sekret", max_batch=64, batch_wait_ms=20.0, model_name="slow-gym")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", rm
    server.should_exit = True
    th.join(timeout=10)


def test_a_bad_request_fails_alone_in_its_batch(live_server):
    """The model refuses one request's input (not a gym prompt): that request gets 422 with the
    model's message; the requests coalesced with it are still scored."""
    url, rm = live_server
    prompts, steps = _batch(3)
    calls_before = len(rm.call_sizes)
    bodies = [{"prompts": [prompts[0]], "steps": [steps[0]]}, {"prompts": ["What is 2+2?"], "steps": [["4"]]},
              {"prompts": [prompts[2]], "steps": [steps[2]]}]
    with ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda b: httpx.post(f"{url}/score", json=b, headers=AUTH, timeout=30), bodies))
    assert [r.status_code for r in rs] == [200, 422, 200]
    assert "prompt" in rs[1].json()["detail"]
    assert rs[2].json()["results"][0]["step_scores"] == GymCheckerRM().score([prompts[2]], [steps[2]])[0]
    assert len(rm.call_sizes) > calls_before


def test_batcher_retries_a_failed_batch_one_request_at_a_time():
    """Deterministic form of the above: three requests queued together share one model call; it
    fails on the bad one, so each is retried alone and only the bad one gets the error."""
    import asyncio

    from prmkit.serve.reward_server import Batcher

    rm = SlowRM()
    batcher = Batcher(rm, max_batch=64, wait_s=0.05)
    prompts, steps = _batch(2)

    async def main():
        return await asyncio.gather(batcher.score([prompts[0]], [steps[0]]), batcher.score(["2+2?"], [["4"]]),
                                    batcher.score([prompts[1]], [steps[1]]), return_exceptions=True)

    good0, bad, good1 = asyncio.run(main())
    assert rm.call_sizes == [3, 1, 1, 1] and batcher.batches == 1
    assert isinstance(bad, InputError) and "prompt" in str(bad)
    assert [good0[0], good1[0]] == GymCheckerRM().score(prompts, steps)


def test_concurrent_requests_are_coalesced(live_server):
    url, rm = live_server
    prompts, steps = _batch(8)
    calls_before = len(rm.call_sizes)

    def one(i):
        r = httpx.post(f"{url}/score", json={"prompts": [prompts[i]], "steps": [steps[i]]}, headers=AUTH,
                       timeout=30)
        return r.json()["results"][0]["step_scores"]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(8)))
    assert got == GymCheckerRM().score(prompts, steps)  # each request got its own rows back
    sizes = rm.call_sizes[calls_before:]
    assert sum(sizes) == 8 and len(sizes) < 8 and max(sizes) > 1, sizes


def test_remote_client_implements_the_protocol(live_server):
    url, _ = live_server
    prompts, steps = _batch(5)
    remote = RemoteRM(url, token="sekret", max_items_per_request=2)
    assert remote.aggregation == "min" and remote.num_parameters == 0 and remote.model_name == "slow-gym"
    got = remote.score(prompts, steps)
    assert got == GymCheckerRM().score(prompts, steps)
    assert remote.stats.calls == 1 and remote.stats.sequences == 5
    from prmkit.rewards.base import response_scores
    assert response_scores(remote, prompts, steps) == [aggregate(s, "min") for s in got]
    with pytest.raises(InputError, match="401"):
        RemoteRM(url, token="wrong").score(prompts[:1], steps[:1])


def test_serves_a_neural_prm_with_batch_invariant_scores():
    """A real HF reward model (the gym backbone with a fresh 2-class head) behind the server: requests
    coalesced into model batches of other sizes and neighbours get the scores of a direct call."""
    import torch
    import uvicorn

    from prmkit.resolve import default_policy
    from prmkit.rewards.discriminative import DiscriminativePRM

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        prm = DiscriminativePRM.from_pretrained(default_policy())
        prompts, steps = _batch(6)
        direct = prm.score(prompts, steps)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(prm, max_batch=4, batch_wait_ms=30.0),
                                               host="127.0.0.1", port=port, log_level="warning"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.01)
        try:
            remote = RemoteRM(f"http://127.0.0.1:{port}")
            assert remote.num_parameters == prm.num_parameters > 0
            with ThreadPoolExecutor(6) as pool:
                got = list(pool.map(lambda i: remote.score([prompts[i]], [steps[i]])[0], range(6)))
            got_all = remote.score(prompts, steps)
            assert remote.stats.tokens_scored > 0
        finally:
            server.should_exit = True
            th.join(timeout=10)
    finally:
        torch.set_num_threads(threads)
    for rows in (got, got_all):
        assert [len(r) for r in rows] == [len(s) for s in steps]
        assert max(abs(a - b) for r, d in zip(rows, direct) for a, b in zip(r, d)) < 1e-5


def test_serve_loads_a_saved_model_dir(tmp_path):
    """`--model DIR` resolves through the saved-model loader (the process itself is started on the
    cheap gym checker below: importing transformers in a subprocess is slow on a shared machine)."""
    import torch

    from prmkit.resolve import default_policy
    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.serve.reward_server import load_reward_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        prm = DiscriminativePRM.from_pretrained(default_policy())
        prm.save_pretrained(tmp_path / "prm")
        loaded = load_reward_model(str(tmp_path / "prm"))
        prompts, steps = _batch(3)
        got, want = loaded.score(prompts, steps), prm.score(prompts, steps)
    finally:
        torch.set_num_threads(threads)
    assert type(loaded) is DiscriminativePRM and loaded.aggregation == prm.aggregation
    assert max(abs(a - b) for r, d in zip(got, want) for a, b in zip(r, d)) < 1e-6
    assert isinstance(load_reward_model("gym-checker"), GymCheckerRM)
    with pytest.raises(InputError):
        load_reward_model(str(tmp_path / "missing"))


def test_cli_serve_starts_and_scores():
    """`prmkit serve --model gym-checker` as a real process, used through the remote client."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "prmkit.cli", "serve", "--model", "gym-checker", "--port",
                             str(port), "--token", "tok", "--aggregation", "prod"],
                            env={**os.environ, "PRMKIT_QUIET": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(480):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        else:
            raise RuntimeError("prmkit serve did not start")
        remote = RemoteRM(url, token="tok")
        assert remote.aggregation == "prod"
        prompts, steps = _batch(4)
        got = remote.score(prompts, steps)
        assert got == GymCheckerRM().score(prompts, steps)
        r = httpx.post(f"{url}/score", json={"prompts": prompts, "steps": steps},
                       headers={"Authorization": "Bearer tok"})
        assert [x["aggregate"] for x in r.json()["results"]] == [math.prod(g) for g in got]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
