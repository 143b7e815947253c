"""A Sampler that speaks the OpenAI-compatible API (vLLM, SGLang, `prmkit serve-policy`): either
`/v1/completions` (text in; with a chat-template prompt format the text is rendered here with the
model's tokenizer) or `/v1/chat/completions` (messages in; the server applies its chat template).

    prmkit sample --sampler openai --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-Math-1.5B
    prmkit sample --sampler openai --endpoint chat --base-url ... --system-prompt "Reason step by step."

On the chat endpoint a prompt that ends inside a solution (labelling rollouts, step search) is sent
as a final assistant message with `continue_final_message: true, add_generation_prompt: false`
(vLLM's and SGLang's extension). `prmkit serve-policy` then renders exactly the text the local
sampler reads; Hugging Face's `continue_final_message` (used by vLLM) strips whitespace at the end
of that message, so a partial solution ending in its separator may be continued one newline short.

Token ids are asked for with vLLM's `return_tokens_as_token_ids` (tokens come back as
`token_id:<id>`); a server that ignores it still gives text, logprobs and token strings.

With `token_prompts=True` the sampler also sends prompts as token ids (`sample_ids`, the form OpenAI's
API and vLLM take) and tokenizes text with the server's `/tokenize` (vLLM's and `prmkit serve-policy`'s):
multi-turn rollouts then keep their context as the exact tokens sampled, as the local sampler does.
"""

from __future__ import annotations

from typing import Sequence

from prmkit.errors import InputError
from prmkit.policy.base import Completion, SamplerStats, SamplingParams
from prmkit.prompting import PromptFormat, with_stops
from prmkit.steps import DEFAULT_SEP, split_steps

# a chat-endpoint prompt is `_USER + problem + _ASSISTANT + solution so far` (private-use code points the
# sampler reads back into messages; they never reach a file or a model)
_USER, _ASSISTANT = "\ue000", "\ue001"
ENDPOINTS = ("completions", "chat")


class OpenAISampler:
    def __init__(self, base_url: str, model: str | None = None, sep: str = DEFAULT_SEP,
                 api_key: str | None = None, timeout: float = 600.0, max_prompts_per_request: int = 32,
                 endpoint: str = "completions", prompt_format: PromptFormat | None = None,
                 token_prompts: bool = False):
        import httpx

        if endpoint not in ENDPOINTS:
            raise InputError(f"unknown endpoint {endpoint!r}; expected one of {list(ENDPOINTS)}", field="endpoint")
        self.endpoint, self.prompt_format = endpoint, prompt_format or PromptFormat()
        self._tokenizer = None

        self.base_url, self.sep = base_url.rstrip("/"), sep
        self.token_prompts = token_prompts
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)
        self.model = model or self._first_model()
        self.max_prompts = max_prompts_per_request
        self.stats = SamplerStats()

    def _first_model(self) -> str:
        r = self.client.get(f"{self.base_url}/models")
        r.raise_for_status()
        return r.json()["data"][0]["id"]

    def render(self, problem: str) -> str:
        """The input of a problem: rendered text (completions) or the marked problem (chat endpoint)."""
        fmt = self.prompt_format
        if self.endpoint == "chat":
            return _USER + problem + _ASSISTANT + fmt.solution_prefix
        if fmt.chat_template and self._tokenizer is None:
            from transformers import AutoTokenizer

            # the completions endpoint takes text: render the chat template with the model's own tokenizer
            self._tokenizer = AutoTokenizer.from_pretrained(self.model)
        return fmt.render(problem, self._tokenizer)

    def chat_messages(self, prompt: str) -> tuple[list[dict[str, str]], bool]:
        """The messages of a chat-endpoint prompt and whether the last (assistant) one is to be continued."""
        if not (prompt.startswith(_USER) and _ASSISTANT in prompt):
            raise InputError("the chat endpoint takes prompts made by this sampler's render(problem)", field="prompt")
        problem, _, partial = prompt[len(_USER):].partition(_ASSISTANT)
        messages = self.prompt_format.messages(problem)
        return (messages + [{"role": "assistant", "content": partial}], True) if partial else (messages, False)

    def sample(self, prompts: Sequence[str], params: SamplingParams,
               seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        if seeds is None:  # the same per-prompt streams as the local sampler
            seeds = [params.seed * 1_000_003 + i for i in range(len(prompts))]
        params = with_stops(params, self.prompt_format)
        out: list[list[Completion]] = []
        if self.endpoint == "chat":  # one conversation per request
            return [self._chat_request(p, params, s) for p, s in zip(prompts, seeds)]
        for c in range(0, len(prompts), self.max_prompts):
            out += self._request(list(prompts[c:c + self.max_prompts]), params, list(seeds[c:c + self.max_prompts]))
        return out

    def sample_ids(self, prompt_ids: list[list[int]], params: SamplingParams, seeds: list[int]) -> list[list[Completion]]:
        """`sample` with prompts given as token ids (needs a server that takes token-id prompts)."""
        params = with_stops(params, self.prompt_format)
        out: list[list[Completion]] = []
        for c in range(0, len(prompt_ids), self.max_prompts):
            out += self._request([list(p) for p in prompt_ids[c:c + self.max_prompts]], params,
                                 list(seeds[c:c + self.max_prompts]))
        return out

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """The server's token ids of `text` (its `/tokenize` endpoint)."""
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        r = self.client.post(f"{root}/tokenize", json={"model": self.model, "prompt": text,
                                                      "add_special_tokens": add_special_tokens})
        if r.status_code != 200:
            raise InputError(f"server answered {r.status_code}: {r.text[:300]}", file=f"{root}/tokenize")
        return [int(t) for t in r.json()["tokens"]]

    def encode_prompt(self, prompt: str) -> list[int]:
        return self.tokenize(prompt, add_special_tokens=True)

    def _post(self, endpoint: str, body: dict, params: SamplingParams) -> dict:
        """POST a completions body (with the stop strings and ignore_eos of `params`); count the call and its tokens."""
        if params.stop:
            body["stop"] = list(params.stop)
        if params.ignore_eos:
            body["ignore_eos"] = True
        url = f"{self.base_url}/{endpoint}"
        r = self.client.post(url, json=body)
        if r.status_code != 200:
            raise InputError(f"server answered {r.status_code}: {r.text[:300]}", file=url)
        data = r.json()
        self.stats.calls += 1
        self.stats.generated_tokens += int(data.get("usage", {}).get("completion_tokens", 0))
        return data

    def _request(self, prompts: list, params: SamplingParams, seeds: list[int]) -> list[list[Completion]]:
        # `seed` is the standard field; `prompt_seeds` (one per prompt) is honoured by prmkit serve-policy
        # so its samples equal the local sampler's, and ignored by other servers
        body = {"model": self.model, "prompt": prompts, "n": params.n, "max_tokens": params.max_new_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "logprobs": max(1, params.top_logprobs),
                "seed": seeds[0],
                "prompt_seeds": seeds, "return_tokens_as_token_ids": True}
        data = self._post("completions", body, params)
        groups: list[list[Completion]] = [[None] * params.n for _ in prompts]  # type: ignore[list-item]
        for k, ch in enumerate(data["choices"]):
            idx = ch.get("index", k)
            groups[idx // params.n][idx % params.n] = self._completion(ch, params.top_logprobs)
        return groups

    def _chat_request(self, prompt: str, params: SamplingParams, seed: int) -> list[Completion]:
        messages, cont = self.chat_messages(prompt)
        body = {"model": self.model, "messages": messages, "n": params.n, "max_tokens": params.max_new_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "seed": seed, "logprobs": True,
                "return_tokens_as_token_ids": True}
        if params.top_logprobs:
            body["top_logprobs"] = params.top_logprobs
        if cont:
            body.update(continue_final_message=True, add_generation_prompt=False)
        data = self._post("chat/completions", body, params)
        group: list[Completion] = [None] * params.n  # type: ignore[list-item]
        for k, ch in enumerate(data["choices"]):
            group[ch.get("index", k)] = self._chat_completion(ch, params.top_logprobs)
        return group

    def _chat_completion(self, ch: dict, top_k: int = 0) -> Completion:
        """A chat choice (`message.content`, `logprobs.content[i].{token, logprob, top_logprobs}`) as a Completion."""
        content = (ch.get("logprobs") or {}).get("content") or []
        tokens = [c.get("token") for c in content]
        ids = [int(t.split(":", 1)[1]) for t in tokens if isinstance(t, str) and t.startswith("token_id:")]
        top = None
        if top_k and content:
            top = [dict(sorted(((int(d["token"].split(":", 1)[1]), float(d["logprob"])) for d in c.get("top_logprobs") or []
                                if str(d.get("token", "")).startswith("token_id:")), key=lambda kv: -kv[1])[:top_k])
                   for c in content]
        text = (ch.get("message") or {}).get("content") or ""
        return Completion(text=text, token_ids=ids if len(ids) == len(tokens) else [], top_logprobs=top,
                          logprobs=[float(c["logprob"]) if c.get("logprob") is not None else float("nan") for c in content],
                          steps=split_steps(text, self.sep), finish_reason=ch.get("finish_reason") or "length",
                          stop=ch.get("stop_reason") if isinstance(ch.get("stop_reason"), str) else None)

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
