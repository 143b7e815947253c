"""The serve stage of `prmkit demo` on the gym: the reward server in-process, used over HTTP by the
remote client and the TRL adapter."""

from __future__ import annotations

import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from prmkit.evaluate.metrics import majority_vote, select_argmax
from prmkit.gym.task import GymGrader, make_split
from prmkit.policy.base import SamplingParams
from prmkit.policy.hf import HFSampler
from prmkit.resolve import default_policy
from prmkit.rewards import default_gym_prm
from prmkit.gym.checker_rm import GymCheckerRM
from prmkit.rewards.remote import RemoteRM
from prmkit.serve.inprocess import start_in_thread
from prmkit.serve.reward_server import create_app
from prmkit.serve.trl_adapter import TRLRewardFunction
from prmkit.steps import split_steps


def demo_stage(out_dir, seed: int) -> dict:
    """Serve a reward model over HTTP and use it as a remote client and as a TRL reward function.

    Samples 4 solutions for each of 48 gym test problems (shipped policy, T=1), starts the reward
    server in-process on the shipped gym PRM (the gym's exact checker when that is missing),
    scores every solution over HTTP from 4 client threads (requests of 8 solutions, coalesced by
    the server's batcher), checks the remote scores equal direct scoring, then ranks each
    problem's 4 solutions with the TRL adapter over the remote model (Best-of-4) beside
    majority-of-4. Writes a latency histogram.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is fastest on a shared machine
    try:
        return _demo(Path(out_dir), seed)
    finally:
        torch.set_num_threads(threads)


def _reward_model():
    """The shipped gym PRM when it is there, else the exact checker; with the name the server gives it."""
    try:
        return default_gym_prm(), "gym-prm"
    except Exception:  # noqa: BLE001 - any reason it cannot load: fall back, and say so in the result
        return GymCheckerRM(aggregation="min"), "gym-checker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_and_score(rm, model_name: str, prompts, steps, texts, keep) -> dict:
    """Start the server on `rm`, score the kept solutions from 4 client threads (8 per request), score
    them directly too, then every text through the TRL adapter; stop the server."""
    port = _free_port()
    server, thread = start_in_thread(create_app(rm, max_batch=64, batch_wait_ms=5.0, model_name=model_name),
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
    return {"requests": len(chunks), "latencies": latencies, "wall": wall, "max_diff": max_diff, "health": health,
            "rewards": rewards}


def _bon_and_majority(problems, texts, rewards) -> tuple[int, int]:
    """Problems solved by the best of each problem's 4 texts under `rewards`, and by their majority vote."""
    grader = GymGrader()
    bon = maj = 0
    for g, p in enumerate(problems):
        lo = 4 * g
        answers = [grader.extract_answer(texts[lo + j]) for j in range(4)]
        best = select_argmax(rewards[lo:lo + 4])
        bon += bool(answers[best] is not None and grader.is_correct(answers[best], p.answer))
        voted = majority_vote(answers)
        maj += bool(voted is not None and grader.is_correct(voted, p.answer))
    return bon, maj


def _latency_plot(latencies, model_name: str, path: Path) -> Path:
    import matplotlib  # (the backend is chosen before pyplot loads)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist([1000 * x for x in latencies], bins=20)
    ax.set_xlabel("request latency (ms), 8 solutions per request, 4 client threads")
    ax.set_ylabel("requests")
    ax.set_title(f"prmkit serve ({model_name})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _demo(out_dir: Path, seed: int) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    problems = make_split("test", 48)
    sampler = HFSampler.from_pretrained(default_policy())
    groups = sampler.sample([p.prompt for p in problems],
                            SamplingParams(n=4, max_new_tokens=96, temperature=1.0, seed=seed))
    prompts = [p.prompt for p, g in zip(problems, groups) for _ in g]
    texts = [c.text for g in groups for c in g]
    steps = [split_steps(t) for t in texts]
    keep = [i for i, s in enumerate(steps) if s]
    rm, model_name = _reward_model()
    r = _serve_and_score(rm, model_name, prompts, steps, texts, keep)
    bon, maj = _bon_and_majority(problems, texts, r["rewards"])
    latencies, health = r["latencies"], r["health"]
    plot = _latency_plot(latencies, model_name, out_dir / "serve_latency.png")
    return {
        "model": model_name, "aggregation": rm.aggregation, "problems": len(problems), "solutions": len(texts),
        "requests": r["requests"], "server_batches": int(health["batches"]),
        "server_model_calls": int(health["model_calls"]),
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p95_ms": 1000 * sorted(latencies)[max(0, int(0.95 * len(latencies)) - 1)],
        "solutions_per_s": len(keep) / r["wall"], "max_abs_diff_remote_vs_direct": float(r["max_diff"]),
        "bon4_accuracy_trl_adapter": bon / len(problems), "majority4_accuracy": maj / len(problems),
        "plots": [str(plot)],
    }
