"""A Sampler that speaks the OpenAI-compatible completions API (vLLM, SGLang, `prmkit serve-policy`).

    prmkit sample --sampler openai --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-Math-1.5B

Token ids are asked for with vLLM's `return_tokens_as_token_ids` (tokens come back as
`token_id:<id>`); a server that ignores it still gives text, logprobs and token strings.
"""

from __future__ import annotations

from typing import Sequence

from prmkit.errors import InputError
from prmkit.policy.base import Completion, SamplerStats, SamplingParams
from prmkit.steps import DEFAULT_SEP, split_steps


class OpenAISampler:
    def __init__(self, base_url: str, model: str | None = None, sep: str = DEFAULT_SEP,
                 api_key: str | None = None, timeout: float = 600.0, max_prompts_per_request: int = 32):
        import httpx

        self.base_url, self.sep = base_url.rstrip("/"), sep
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)
        self.model = model or self._first_model()
        self.max_prompts = max_prompts_per_request
        self.stats = SamplerStats()

    def _first_model(self) -> str:
        r = self.client.get(f"{self.base_url}/models")
        r.raise_for_status()
        return r.json()["data"][0]["id"]

    def sample(self, prompts: Sequence[str], params: SamplingParams,
               seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        if seeds is None:  # the same per-prompt streams as the local sampler
            seeds = [params.seed * 1_000_003 + i for i in range(len(prompts))]
        out: list[list[Completion]] = []
        for c in range(0, len(prompts), self.max_prompts):
            out += self._request(list(prompts[c:c + self.max_prompts]), params, list(seeds[c:c + self.max_prompts]))
        return out

    def _request(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[list[Completion]]:
        # `seed` is the standard field; `prompt_seeds` (one per prompt) is honoured by prmkit serve-policy
        # so its samples equal the local sampler's, and ignored by other servers
        body = {"model": self.model, "prompt": prompts, "n": params.n, "max_tokens": params.max_new_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "logprobs": max(1, params.top_logprobs),
                "seed": seeds[0],
                "prompt_seeds": seeds, "return_tokens_as_token_ids": True}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.ignore_eos:
            body["ignore_eos"] = True
        r = self.client.post(f"{self.base_url}/completions", json=body)
        if r.status_code != 200:
            raise InputError(f"server answered {r.status_code}: {r.text[:300]}", file=f"{self.base_url}/completions")
        data = r.json()
        self.stats.calls += 1
        self.stats.generated_tokens += int(data.get("usage", {}).get("completion_tokens", 0))
        groups: list[list[Completion]] = [[None] * params.n for _ in prompts]  # type: ignore[list-item]
        for k, ch in enumerate(data["choices"]):
            idx = ch.get("index", k)
            groups[idx // params.n][idx % params.n] = self._completion(ch, params.top_logprobs)
        return groups

    def _completion(self, ch: dict, top_k: int = 0) -> Completion:
        lp = ch.get("logprobs") or {}
        tokens = lp.get("tokens") or []
        ids = [int(t.split(":", 1)[1]) for t in tokens if isinstance(t, str) and t.startswith("token_id:")]
        text = ch.get("text", "")
        top = None
        if top_k and lp.get("top_logprobs"):
            # keys are "token_id:N" (we ask for ids); the k most likely of each position (the sampled
            # token, which servers add, is dropped unless it is among them)
            top = [dict(sorted(((int(key.split(":", 1)[1]), float(v)) for key, v in (d or {}).items()
                                if isinstance(key, str) and key.startswith("token_id:")),
                               key=lambda kv: -kv[1])[:top_k]) for d in lp["top_logprobs"]]
        return Completion(text=text, token_ids=ids if len(ids) == len(tokens) else [], top_logprobs=top,
                          logprobs=[float(x) if x is not None else float("nan") for x in lp.get("token_logprobs") or []],
                          steps=split_steps(text, self.sep), finish_reason=ch.get("finish_reason") or "length",
                          stop=ch.get("stop_reason") if isinstance(ch.get("stop_reason"), str) else None)
