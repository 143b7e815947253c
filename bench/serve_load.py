"""Bounded load test of `prmkit serve` on loopback (never part of the test suite).

Starts `prmkit serve` as its own process (default: the shipped gym PRM, `--model gym-prm`; or
`--model gym-checker`), then runs `prmkit.serve.loadtest.run_load`: a fixed number of small /score
requests from a few clients while 3,000-step requests run beside them, then requests over the step
limit that must get 413. Writes p50/p99 latency of the small requests (alone and during a big one),
the share of errors, counts and the settings to bench/results/serve_load.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from prmkit.serve.loadtest import LoadSpec, run_load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, token: str, proc: subprocess.Popen, limit_s: float = 180.0) -> dict:
    import httpx

    end = time.time() + limit_s
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"prmkit serve exited with {proc.returncode}")
        try:
            r = httpx.get(f"{url}/health", headers={"Authorization": f"Bearer {token}"}, timeout=2)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("prmkit serve did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gym-prm", help="what prmkit serve serves (gym-prm, gym-checker, a dir)")
    ap.add_argument("--small-requests", type=int, default=LoadSpec.small_requests)
    ap.add_argument("--small-clients", type=int, default=LoadSpec.small_clients)
    ap.add_argument("--big-requests", type=int, default=LoadSpec.big_requests)
    ap.add_argument("--big-steps", type=int, default=LoadSpec.big_steps)
    ap.add_argument("--oversized-requests", type=int, default=LoadSpec.oversized_requests)
    ap.add_argument("--max-steps", type=int, default=4096, help="the server's --max-steps")
    ap.add_argument("--max-batch", type=int, default=16,
                    help="the server's --max-batch: a small request waits for about one call of this many items "
                         "and one small call of its own")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of the server (OMP_NUM_THREADS)")
    ap.add_argument("--out", default="bench/results/serve_load.json")
    args = ap.parse_args()
    spec = LoadSpec(small_requests=args.small_requests, small_clients=args.small_clients,
                    big_requests=args.big_requests, big_steps=args.big_steps,
                    oversized_requests=args.oversized_requests, oversized_steps=args.max_steps + 904)
    port, token = _free_port(), "bench-token"
    env = {**os.environ, "PRMKIT_QUIET": "1", "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, "-m", "prmkit.cli", "serve", "--model", args.model, "--port", str(port), "--token", token,
           "--max-steps", str(args.max_steps), "--max-batch", str(args.max_batch)]
    proc = subprocess.Popen(cmd, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        health = _wait_up(url, token, proc)
        result = run_load(url, spec, token)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result["server"] = {"command": " ".join(["prmkit"] + cmd[3:]).replace(str(port), "PORT"),
                        "model": health.get("model"), "num_parameters": health.get("num_parameters"),
                        "context_length": health.get("context_length"), "limits": health.get("limits"),
                        "torch_threads": args.threads}
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("error_share", "small_latency_ms", "small_latency_during_a_big_one_ms",
                                            "small_latency_alone_ms", "big_latency_ms", "oversized_status_codes",
                                            "wall_s")}, indent=2))


if __name__ == "__main__":
    main()
