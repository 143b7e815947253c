"""The OpenAI-compatible client against `prmkit serve-policy` started here: n completions whose
reported logprobs equal teacher-forced logprobs of the served model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch

from prmkit.gym.task import make_split
from prmkit.policy.base import SamplingParams
from prmkit.policy.openai import OpenAISampler
from tests.invariants.test_sampler import teacher_forced_logprobs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "prmkit.cli", "serve-policy", "--port", str(port),
                             "--api-key", "sekret"], env={**os.environ, "PRMKIT_QUIET": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.25)
    else:
        proc.kill()
        raise RuntimeError("serve-policy did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_client_n_completions_match_teacher_forcing(server, gym_policy):
    client = OpenAISampler(base_url=f"{server}/v1", api_key="sekret")
    problems = make_split("test", 2)
    groups = client.sample([p.prompt for p in problems], SamplingParams(n=3, max_new_tokens=64, seed=4))
    assert [len(g) for g in groups] == [3, 3]
    for p, group in zip(problems, groups):
        prompt_ids = gym_policy.encode_prompt(p.prompt)
        for c in group:
            assert c.token_ids and len(c.token_ids) == len(c.logprobs)
            tf = teacher_forced_logprobs(gym_policy.model, prompt_ids + c.token_ids)[len(prompt_ids) - 1:]
            assert float((tf - torch.tensor(c.logprobs)).abs().max()) < 1e-4
            assert c.steps == [s for s in c.text.split("\n") if s.strip()]
    # the same request and seed give the same samples as the local sampler
    local = gym_policy.sample([p.prompt for p in problems], SamplingParams(n=3, max_new_tokens=64, seed=4))
    assert [[c.text for c in g] for g in local] == [[c.text for c in g] for g in groups]


def test_server_auth_and_validation(server):
    body = {"prompt": "Q:1,+2\n", "max_tokens": 4}
    assert httpx.post(f"{server}/v1/completions", json=body).status_code == 401
    r = httpx.post(f"{server}/v1/completions", json={**body, "n": 0}, headers={"Authorization": "Bearer sekret"})
    assert r.status_code == 422 and "n" in r.text
    r = httpx.post(f"{server}/v1/completions", json={**body, "stop": ["\n"], "logprobs": 1},
                   headers={"Authorization": "Bearer sekret"})
    data = r.json()
    assert r.status_code == 200 and data["usage"]["completion_tokens"] >= 1
    assert data["choices"][0]["logprobs"]["text_offset"][0] == len(body["prompt"])


def test_top_logprobs_over_the_wire_equal_the_local_samplers(server, gym_policy):
    problems = make_split("test", 2)
    params = SamplingParams(n=2, max_new_tokens=16, temperature=1.0, seed=6, top_logprobs=4)
    remote = OpenAISampler(base_url=f"{server}/v1", api_key="sekret").sample([p.prompt for p in problems], params)
    local = gym_policy.sample([p.prompt for p in problems], params)
    for rg, lg in zip(remote, local):
        for r, lc in zip(rg, lg):
            assert r.token_ids == lc.token_ids
            assert [list(d) for d in r.top_logprobs] == [list(d) for d in lc.top_logprobs]
            for rd, ld in zip(r.top_logprobs, lc.top_logprobs):
                assert list(rd.values()) == pytest.approx(list(ld.values()), abs=1e-5)
    # the raw layout is OpenAI's: per token {token: logprob}, the sampled token always listed
    raw = httpx.post(f"{server}/v1/completions", headers={"authorization": "Bearer sekret"},
                     json={"prompt": problems[0].prompt, "max_tokens": 8, "logprobs": 2, "seed": 1}).json()
    lp = raw["choices"][0]["logprobs"]
    assert len(lp["top_logprobs"]) == len(lp["tokens"])
    for tok, v, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
        assert top[tok] == pytest.approx(v) and 2 <= len(top) <= 3
