"""The generative verifier over an OpenAI-compatible endpoint (`prmkit serve-policy`, in-process):
the same seeded chains as the local HF verifier, verdicts counted as frequencies, gaps reported."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.rewards.generative import GenerativeVerifier


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_remote_chains_equal_local_chains(gym_policy):
    import uvicorn

    from prmkit.serve.policy_server import make_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(gym_policy, "gym"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    try:
        probs = make_split("test", 2)
        steps = [parse_prompt(p.prompt).solution_steps() for p in probs]
        kw = dict(style="genprm", num_chains=2, max_new_tokens=8, temperature=1.0, top_p=1.0, seed=3)
        remote = GenerativeVerifier.from_openai(f"http://127.0.0.1:{port}/v1", **kw)
        local = GenerativeVerifier(gym_policy, **kw)
        assert remote.model is None and local.model is not None  # frequencies vs logits
        got = remote.verify([p.prompt for p in probs], steps)
        want = local.verify([p.prompt for p in probs], steps)
    finally:
        server.should_exit = True
        th.join(timeout=10)
    assert [r.chains for r in got] == [r.chains for r in want]
    assert [len(r.step_scores) for r in got] == [len(s) for s in steps]
    assert remote.stats.unparsed_steps == sum(map(len, steps)) == local.stats.unparsed_steps
    assert remote.stats.chains == 2 * sum(map(len, steps))
