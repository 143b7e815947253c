"""`--backend ray` for `prmkit score` and `prmkit search` writes what the local backend writes: two Ray
actors on the gym policy and the shipped gym PRM (one Ray session shared by the module)."""

from __future__ import annotations

import json

import pytest

from prmkit.errors import InputError
from prmkit.schema import write_records

ray = pytest.importorskip("ray")


pytestmark = pytest.mark.usefixtures("one_thread")  # (tests/conftest.py)


@pytest.fixture(scope="module")
def ray_session():
    from prmkit.ray_pool import ACTOR_ENV

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": ACTOR_ENV})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def traces_file(tmp_path_factory, gym_policy):
    from prmkit.gym.task import make_split
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.sample import sample_traces

    traces = sample_traces(gym_policy, make_split("test", 5), SamplingParams(n=4, max_new_tokens=96, seed=11))
    path = tmp_path_factory.mktemp("ray") / "traces.jsonl"
    write_records(path, traces)
    return path


def test_score_ray_equals_local(ray_session, traces_file, tmp_path):
    from prmkit.score import ScoreConfig, run

    # batches of 8 over 20 traces: scored in other padded batches (e.g. consecutive slices) the gym PRM's
    # float32 scores differ in the last bits, so equal bytes need the local backend's own batches
    local = run(ScoreConfig(traces=str(traces_file), out=str(tmp_path / "local"), batch_size=8, threads=1))
    remote = run(ScoreConfig(traces=str(traces_file), out=str(tmp_path / "ray"), batch_size=8, threads=1,
                             backend="ray", workers=2))
    expected = (local / "scored.jsonl").read_bytes()
    assert expected.count(b"\n") == 20
    assert (remote / "scored.jsonl").read_bytes() == expected


FAST = dict(split="test", num_problems=4, n=4, beam_width=2, seed=3, max_step_tokens=24, max_steps=14,
            max_new_tokens=160, threads=1)
RUN_SPECIFIC = ("wall_s", "policy_calls", "prm_calls")   # how the work was split, not what it found


def _search_pair(tmp_path, method: str, **kw):
    from prmkit.search.run import SearchConfig, run

    local = run(SearchConfig(method=method, out=str(tmp_path / "local"), **FAST, **kw))
    remote = run(SearchConfig(method=method, out=str(tmp_path / "ray"), backend="ray", workers=2, **FAST, **kw))
    return local, remote


@pytest.mark.parametrize("method", ["best_of_n", "beam", "dvts", "early_reject", "mcts"])
def test_search_ray_equals_local(ray_session, tmp_path, method):
    local, remote = _search_pair(tmp_path, method, prm="checker", flip_rate=0.2)
    expected = (tmp_path / "local" / "traces.jsonl").read_bytes()
    assert expected.count(b"\n") == sum(p["candidates"] for p in local["per_problem"]) >= 4
    assert (tmp_path / "ray" / "traces.jsonl").read_bytes() == expected
    on_disk = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(remote))
    for key in RUN_SPECIFIC:
        local.pop(key), remote.pop(key)
    assert remote == local
    assert remote["policy_tokens"] == sum(p["policy_tokens"] for p in remote["per_problem"]) > 0


def test_search_ray_with_the_gym_prm(ray_session, tmp_path):
    """With a neural PRM the actors score in other padded batches: the same candidates, choices and
    token counts as local, and step scores equal up to float32 rounding."""
    local, remote = _search_pair(tmp_path, "best_of_n")
    rows = [[json.loads(x) for x in (tmp_path / d / "traces.jsonl").read_text().splitlines()] for d in ("local", "ray")]
    assert len(rows[0]) == len(rows[1]) == 16
    for a, b in zip(*rows):
        assert (a["steps"], a["meta"]["selected"], a["outcome"]) == (b["steps"], b["meta"]["selected"], b["outcome"])
        assert a["meta"]["step_scores"] == pytest.approx(b["meta"]["step_scores"], abs=1e-5)
    assert remote["per_problem"] == local["per_problem"]
    for key in ("policy_tokens", "policy_forward_tokens", "prm_tokens", "prm_uncached_tokens", "flops"):
        assert remote[key] == local[key]


@pytest.mark.parametrize("kw,field", [({"backend": "spark"}, "backend"), ({"backend": "ray", "workers": 0}, "workers"),
                                      ({"servers": ["http://127.0.0.1:9"]}, "servers")])
def test_score_options_checked_before_any_load(tmp_path, traces_file, kw, field):
    from prmkit.score import ScoreConfig, run

    with pytest.raises(InputError) as e:
        run(ScoreConfig(traces=str(traces_file), out=str(tmp_path / "s"), **kw))
    assert e.value.field == field
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("kw,field", [({"backend": "spark"}, "backend"), ({"backend": "ray", "workers": 0}, "workers"),
                                      ({"backend": "ray", "chunk": -1}, "chunk"),
                                      ({"backend": "ray", "prm_servers": ["http://127.0.0.1:9"]}, "prm_servers"),
                                      ({"backend": "ray", "policy_servers": ["ftp://x"]}, "policy_servers")])
def test_search_options_checked_before_any_load(tmp_path, kw, field):
    from prmkit.search.run import SearchConfig, run

    with pytest.raises(InputError) as e:
        run(SearchConfig(method="beam", out=str(tmp_path / "s"), split="test", num_problems=2, **kw))
    assert e.value.field == field
    assert not (tmp_path / "s").exists()


def test_empty_inputs_are_handled_as_local(tmp_path):
    """No traces / no problems (with --allow-empty): the ray backend writes what the local one does
    (empty outputs) and starts no Ray."""
    from prmkit.resolve import default_policy
    from prmkit.reading import ReadPolicy, set_read_policy
    from prmkit.score import ScoreConfig
    from prmkit.score import run as score
    from prmkit.search.run import SearchConfig
    from prmkit.search.run import run as search

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    was_running = ray.is_initialized()
    previous = set_read_policy(ReadPolicy(allow_empty=True))
    try:
        outs = {b: score(ScoreConfig(traces=str(empty), model="gym", out=str(tmp_path / f"s-{b}"), backend=b))
                for b in ("local", "ray")}
        found = {b: search(SearchConfig(method="beam", problems=str(empty), model=str(default_policy()), prm="gym",
                                        out=str(tmp_path / f"q-{b}"), backend=b, n=2, beam_width=2))
                 for b in ("local", "ray")}
    finally:
        set_read_policy(previous)
    assert (outs["ray"] / "scored.jsonl").read_bytes() == (outs["local"] / "scored.jsonl").read_bytes() == b""
    assert (tmp_path / "q-ray" / "traces.jsonl").read_bytes() == (tmp_path / "q-local" / "traces.jsonl").read_bytes()
    assert found["ray"]["problems"] == found["local"]["problems"] == 0
    assert ray.is_initialized() == was_running


def test_score_ray_packed_equals_local_packed(ray_session, traces_file, tmp_path):
    """With --pack-tokens the actors are handed the local run's packed rows (not --batch-size batches, which
    would pack other rows: float32 scores differ in the last bits) and pack them the same way."""
    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.score import ScoreConfig, run
    from tests.conftest import build_bpe_tokenizer
    from tests.unit.test_rm_readout import _tiny

    tok = build_bpe_tokenizer()
    model_dir = tmp_path / "prm"
    DiscriminativePRM(_tiny("Qwen2ForTokenClassification", tok, num_labels=2), tok).save_pretrained(model_dir)
    kw = dict(traces=str(traces_file), model=str(model_dir), pack_tokens=400, batch_size=4, threads=1)
    local = run(ScoreConfig(out=str(tmp_path / "local"), **kw))
    remote = run(ScoreConfig(out=str(tmp_path / "ray"), backend="ray", workers=2, **kw))
    expected = (local / "scored.jsonl").read_bytes()
    assert expected.count(b"\n") == 20
    assert (remote / "scored.jsonl").read_bytes() == expected


def _serve(app):
    import socket

    from prmkit.serve.inprocess import start_in_thread

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, thread = start_in_thread(app, port)
    return f"http://127.0.0.1:{port}", server, thread


def test_search_ray_over_two_policy_and_two_reward_servers(ray_session, tmp_path):
    """Live servers: two `serve-policy` servers (the gym policy) and two `prmkit serve` servers (the shipped gym
    PRM) on loopback. Ray's two actors each use their own pair, and the records equal a local run against
    the first pair (step scores up to float rounding); every server answered requests."""
    import httpx

    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy
    from prmkit.rewards import default_gym_prm
    from prmkit.search.run import SearchConfig, run
    from prmkit.serve.policy_server import make_app
    from prmkit.serve.reward_server import create_app

    samplers = [HFSampler.from_pretrained(default_policy()) for _ in range(2)]
    servers = [_serve(make_app(s, "gym")) for s in samplers] + [_serve(create_app(default_gym_prm())) for _ in range(2)]
    (p1, p2, r1, r2) = [url for url, _, _ in servers]
    try:
        kw = dict(method="beam", sampler="openai", **{**FAST, "num_problems": 4})
        local = run(SearchConfig(out=str(tmp_path / "local"), base_url=f"{p1}/v1", prm=r1, **kw))
        health = lambda: [httpx.get(f"{r}/health", timeout=5).json()["requests"] for r in (r1, r2)]  # noqa: E731
        before, before_req = [s.stats.calls for s in samplers], health()
        remote = run(SearchConfig(out=str(tmp_path / "ray"), base_url=f"{p1}/v1", prm=r1, backend="ray", workers=2,
                                  policy_servers=[f"{p2}/v1"], prm_servers=[r2], **kw))
        calls = [s.stats.calls - b for s, b in zip(samplers, before)]
        requests = [a - b for a, b in zip(health(), before_req)]
    finally:
        for _, server, thread in servers:
            server.should_exit = True
            thread.join(timeout=10)
    # as with a local neural PRM (test_search_ray_with_the_gym_prm): each server scores the requests it gets in
    # its own padded batches, so step scores agree up to float32 rounding; everything else is equal
    rows = [[json.loads(x) for x in (tmp_path / d / "traces.jsonl").read_text().splitlines()] for d in ("local", "ray")]
    assert len(rows[0]) == len(rows[1]) >= 4
    for a, b in zip(*rows):
        assert (a["steps"], a["meta"]["selected"], a["outcome"]) == (b["steps"], b["meta"]["selected"], b["outcome"])
        assert a["meta"]["step_scores"] == pytest.approx(b["meta"]["step_scores"], abs=1e-5)
    assert remote["per_problem"] == local["per_problem"]
    for key in ("policy_tokens", "prm_tokens", "flops"):
        assert remote[key] == local[key]
    assert all(c > 0 for c in calls), calls     # both policy servers sampled for the Ray run
    assert all(r > 0 for r in requests), requests  # and both reward servers scored


def test_score_ray_over_two_reward_servers(ray_session, traces_file, tmp_path):
    """`score --backend ray --model URL1 --servers URL2` against two live `prmkit serve` servers (the shipped gym
    PRM): the output equals a local run against the first (scores within float rounding), and both scored."""
    import httpx

    from prmkit.rewards import default_gym_prm
    from prmkit.score import ScoreConfig, run
    from prmkit.serve.reward_server import create_app

    servers = [_serve(create_app(default_gym_prm())) for _ in range(2)]
    (r1, r2) = [url for url, _, _ in servers]
    health = lambda: [httpx.get(f"{r}/health", timeout=5).json()["requests"] for r in (r1, r2)]  # noqa: E731
    try:
        local = run(ScoreConfig(traces=str(traces_file), model=r1, out=str(tmp_path / "local"), batch_size=4))
        before = health()
        remote = run(ScoreConfig(traces=str(traces_file), model=r1, servers=[r2], out=str(tmp_path / "ray"),
                                 batch_size=4, backend="ray", workers=2))
        requests = [a - b for a, b in zip(health(), before)]
    finally:
        for _, server, thread in servers:
            server.should_exit = True
            thread.join(timeout=10)
    # a server cuts its own model calls from the requests it gets (20 traces in one request locally, two
    # actors' shares under Ray), and a trace scored in another padded batch differs in the last float bits
    got, want = ([json.loads(line) for line in (d / "scored.jsonl").open()] for d in (remote, local))
    assert len(want) == 20 and [r["problem_id"] for r in got] == [r["problem_id"] for r in want]
    for g, w in zip(got, want):
        assert g["meta"]["rm"]["step_scores"] == pytest.approx(w["meta"]["rm"]["step_scores"], abs=1e-6)
        assert {**g, "meta": {}} == {**w, "meta": {}}
    assert all(r > 0 for r in requests), requests
