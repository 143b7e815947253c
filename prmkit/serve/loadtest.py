"""A bounded load test of a running `prmkit serve` (`bench/serve_load.py` runs it on loopback).

A fixed number of requests, nothing open-ended: `small_clients` threads each send their share of
`small_requests` small /score requests (`small_items` gym solutions each, one step in three broken)
back to back, while one more thread sends `big_requests` requests of exactly `big_steps` steps
(gym gold solutions), and then `oversized_requests` requests over the server's step limit, which
must be refused with 413. Before the load, `baseline_requests` small requests run alone, so the
small requests' latency under load can be read against it.

Reported: p50/p99 latency of the small requests (alone, and while a big one was in flight), the
big requests' latency, the share of errors (any answer other than 200 to a valid request, or a
transport error), how the oversized requests were answered, counts and the settings.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass


@dataclass
class LoadSpec:
    """What one load test sends (all counts fixed in advance)."""

    small_requests: int = 150
    small_clients: int = 3
    small_items: int = 2
    big_requests: int = 4
    big_steps: int = 3000
    oversized_requests: int = 4
    oversized_steps: int = 5000
    baseline_requests: int = 30
    timeout_s: float = 120.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least a share `q` of values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def small_bodies(n: int, items: int) -> list[dict]:
    """`n` small /score bodies of `items` gym test solutions each; every third solution has a wrong step."""
    from prmkit.gym.task import make_split, parse_prompt

    problems = make_split("test", n * items)
    bodies = []
    for r in range(n):
        prompts, steps = [], []
        for k, p in enumerate(problems[r * items:(r + 1) * items]):
            ss = parse_prompt(p.prompt).solution_steps()
            if (r * items + k) % 3 == 0:
                lhs, res = ss[0].split("=")
                ss[0] = f"{lhs}={int(res) + 1}"
            prompts.append(p.prompt)
            steps.append(ss)
        bodies.append({"prompts": prompts, "steps": steps})
    return bodies


def big_body(total_steps: int, split: str = "dev") -> dict:
    """One /score body of gym gold solutions holding exactly `total_steps` steps (the last one cut)."""
    from prmkit.gym.task import make_split, parse_prompt

    prompts, steps, count = [], [], 0
    for p in make_split(split, total_steps):  # every solution has at least 3 steps: enough problems
        ss = parse_prompt(p.prompt).solution_steps()[: total_steps - count]
        prompts.append(p.prompt)
        steps.append(ss)
        count += len(ss)
        if count == total_steps:
            break
    return {"prompts": prompts, "steps": steps}


def _send(client, url: str, body: dict) -> tuple[int, float]:
    t = time.perf_counter()
    try:
        code = client.post(f"{url}/score", json=body).status_code
    except Exception:  # noqa: BLE001 - a transport error is counted, not raised
        code = -1
    return code, time.perf_counter() - t


def _small_worker(client_args: tuple, bodies: list, out: list, busy: threading.Event) -> None:
    """Send `bodies` back to back; each result records whether a big request was in flight."""
    import httpx

    with httpx.Client(**client_args[0]) as client:
        for body in bodies:
            under_load = busy.is_set()
            code, seconds = _send(client, client_args[1], body)
            out.append((code, seconds, under_load))


def _heavy_worker(client_args: tuple, big: list, oversized: list, out: list, busy: threading.Event) -> None:
    """The big requests back to back (`busy` set meanwhile), then the oversized ones."""
    import httpx

    with httpx.Client(**client_args[0]) as client:
        busy.set()
        for body in big:
            out.append((*_send(client, client_args[1], body), True))
        busy.clear()
        for body in oversized:
            out.append((*_send(client, client_args[1], body), False))


def run_load(url: str, spec: LoadSpec, token: str = "") -> dict:
    """Run the load test in `spec` against the server at `url` (see the module docstring)."""
    client_args = ({"headers": {"Authorization": f"Bearer {token}"} if token else {}, "timeout": spec.timeout_s}, url)
    smalls = small_bodies(spec.small_requests + spec.baseline_requests, spec.small_items)
    big, oversized = big_body(spec.big_steps), big_body(spec.oversized_steps)
    baseline: list = []
    _small_worker(client_args, smalls[: spec.baseline_requests], baseline, threading.Event())
    loaded = smalls[spec.baseline_requests:]
    small_out: list = []
    heavy_out: list = []
    busy = threading.Event()
    threads = [threading.Thread(target=_heavy_worker, args=(client_args, [big] * spec.big_requests,
                                                            [oversized] * spec.oversized_requests, heavy_out, busy))]
    threads += [threading.Thread(target=_small_worker, args=(client_args, loaded[c::spec.small_clients], small_out, busy))
                for c in range(spec.small_clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    return _summary(spec, baseline, small_out, heavy_out, wall, len(big["prompts"]), len(oversized["prompts"]))


def _summary(spec: LoadSpec, baseline, small_out, heavy_out, wall, big_items, oversized_items) -> dict:
    big_out, over_out = heavy_out[: spec.big_requests], heavy_out[spec.big_requests:]
    valid = baseline + small_out + big_out
    errors = sum(code != 200 for code, _, _ in valid)
    under = [s for code, s, loaded in small_out if loaded and code == 200]
    ms = lambda xs, q: round(1000 * percentile(xs, q), 2)  # noqa: E731
    return {
        "settings": {**asdict(spec), "big_items": big_items, "oversized_items": oversized_items},
        "counts": {"valid_requests": len(valid), "small_requests": len(small_out), "baseline_requests": len(baseline),
                   "small_requests_during_a_big_one": len(under), "big_requests": len(big_out),
                   "oversized_requests": len(over_out)},
        "error_share": errors / max(1, len(valid)),
        "errors": errors,
        "small_latency_ms": {"p50": ms([s for c, s, _ in small_out if c == 200], 0.5),
                             "p99": ms([s for c, s, _ in small_out if c == 200], 0.99)},
        "small_latency_during_a_big_one_ms": {"p50": ms(under, 0.5), "p99": ms(under, 0.99)},
        "small_latency_alone_ms": {"p50": ms([s for c, s, _ in baseline if c == 200], 0.5),
                                   "p99": ms([s for c, s, _ in baseline if c == 200], 0.99)},
        "big_latency_ms": {"p50": ms([s for c, s, _ in big_out if c == 200], 0.5),
                           "max": ms([s for c, s, _ in big_out if c == 200], 1.0)},
        "oversized_status_codes": sorted({code for code, _, _ in over_out}),
        "oversized_latency_ms_max": ms([s for _, s, _ in over_out], 1.0),
        "wall_s": round(wall, 2),
    }
