"""A reward model served over HTTP by `prmkit serve`, behind the RewardModel protocol.

    rm = RemoteRM("http://127.0.0.1:8001", token="sekret")
    rm.score(["Q:7,+3\\n"], [["7+3=10", "A:10"]])        # -> [[1.0, 1.0]]

Anything that takes a reward model (search, RL, the TRL adapter, evaluation) can use a model
running on another machine this way. Large calls are split into requests of at most
`max_items_per_request` items and `max_steps_per_request` steps (the server's default limits allow
more); the server coalesces concurrent requests into batches. A 429 (the server's queue is full)
is retried after its Retry-After, up to `retries_429` times.

Compute accounting: `num_parameters` is the served model's (from `/health`); token counts are
kept by the server (`/health` reports `tokens_scored`), so `stats.tokens_scored` here is the
growth of the server's counter between this client's responses (exact when this client is the
server's only user).
"""

from __future__ import annotations

from typing import Sequence

from prmkit.errors import InputError
from prmkit.rewards.aggregate import AGGREGATIONS
from prmkit.rewards.base import ScorerStats


class RemoteRM:
    def __init__(self, base_url: str, token: str | None = None, aggregation: str | None = None,
                 timeout: float = 600.0, max_items_per_request: int = 256, max_steps_per_request: int = 4096,
                 retries_429: int = 30):
        import httpx

        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)
        self.max_items, self.max_steps, self.retries_429 = max_items_per_request, max_steps_per_request, retries_429
        info = self.health()
        self.model_name = info.get("model", "")
        self.kind, self.threshold, self.meta = "remote", None, {"url": self.base_url, "model": self.model_name}
        self._num_parameters = int(info.get("num_parameters", 0))
        self.aggregation = aggregation or info.get("aggregation", "min")
        if self.aggregation not in AGGREGATIONS:
            raise InputError(f"expected one of {sorted(AGGREGATIONS)}, got {self.aggregation!r}",
                             field="aggregation")
        self.stats = ScorerStats()
        self._server_tokens = int(info.get("tokens_scored", 0))

    @property
    def num_parameters(self) -> int:
        return self._num_parameters

    def health(self) -> dict:
        import httpx

        url = f"{self.base_url}/health"
        try:
            r = self.client.get(url)
        except httpx.HTTPError as e:
            raise InputError(f"cannot reach the reward server: {e}", file=url) from e
        if r.status_code != 200:
            raise InputError(f"server answered {r.status_code}: {r.text[:300]}", file=url)
        return r.json()

    def score(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        if len(prompts) != len(steps):
            raise InputError(f"expected one list of steps per prompt ({len(prompts)}), got {len(steps)}",
                             field="steps")
        out: list[list[float]] = []
        for a, b in request_spans([len(s) for s in steps], self.max_items, self.max_steps):
            out += self._request(list(prompts[a:b]), [list(s) for s in steps[a:b]])
        self.stats.calls += 1
        self.stats.sequences += len(prompts)
        return out

    def _request(self, prompts: list[str], steps: list[list[str]]) -> list[list[float]]:
        import time

        url = f"{self.base_url}/score"
        for _ in range(self.retries_429 + 1):
            r = self.client.post(url, json={"prompts": prompts, "steps": steps})
            if r.status_code != 429:
                break
            time.sleep(min(30.0, float(r.headers.get("retry-after", "1") or 1)))
        if r.status_code != 200:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise InputError(f"server answered {r.status_code}: {str(detail)[:500]}", file=url)
        data = r.json()
        server_tokens = int(data.get("tokens_scored", self._server_tokens))
        self.stats.tokens_scored += max(0, server_tokens - self._server_tokens)
        self._server_tokens = server_tokens
        rows = [res["step_scores"] for res in data["results"]]
        # the server sends non-finite scores as null; the protocol speaks floats
        return [[float("nan") if v is None else float(v) for v in row] for row in rows]


def request_spans(step_counts: Sequence[int], max_items: int, max_steps: int) -> list[tuple[int, int]]:
    """[start, end) item ranges, in order, each of at most `max_items` items and `max_steps` steps
    (an item over `max_steps` alone goes in a request of its own, for the server to refuse by name)."""
    spans, start, steps = [], 0, 0
    for i, n in enumerate(step_counts):
        if i > start and (i - start >= max_items or steps + n > max_steps):
            spans.append((start, i))
            start, steps = i, 0
        steps += n
    if start < len(step_counts):
        spans.append((start, len(step_counts)))
    return spans
