"""A reward model served over HTTP by `prmkit serve`, behind the RewardModel protocol.

    rm = RemoteRM("http://127.0.0.1:8001", token="sekret")
    rm.score(["Q:7,+3\\n"], [["7+3=10", "A:10"]])        # -> [[1.0, 1.0]]

Anything that takes a reward model (search, RL, the TRL adapter, evaluation) can use a model
running on another machine this way. Large calls are split into requests of at most
`max_items_per_request` items; the server coalesces concurrent requests into batches.

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
                 timeout: float = 600.0, max_items_per_request: int = 256):
        import httpx

        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)
        self.max_items = max_items_per_request
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
        for c in range(0, len(prompts), self.max_items):
            out += self._request(list(prompts[c:c + self.max_items]), [list(s) for s in steps[c:c + self.max_items]])
        self.stats.calls += 1
        self.stats.sequences += len(prompts)
        return out

    def _request(self, prompts: list[str], steps: list[list[str]]) -> list[list[float]]:
        url = f"{self.base_url}/score"
        r = self.client.post(url, json={"prompts": prompts, "steps": steps})
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
