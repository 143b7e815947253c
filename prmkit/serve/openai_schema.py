# no `from __future__ import annotations` here: pydantic reads the field annotations at runtime
"""The request bodies of `prmkit serve-policy`'s OpenAI-compatible endpoints, as pydantic models built
on first use (so the CLI imports neither pydantic nor FastAPI until a server starts): OpenAI's fields
plus the vLLM / SGLang extensions that clients of those servers send."""

from typing import Optional, Union

SEED_MIN, SEED_MAX = -(2 ** 63), 2 ** 64 - 1  # what torch.Generator.manual_seed accepts


def completion_request_model():
    """The pydantic body of /v1/completions (OpenAI's fields and vLLM's extensions)."""
    from pydantic import BaseModel, Field

    class CompletionRequest(BaseModel):
        model: Optional[str] = None
        prompt: Union[str, list[str], list[int], list[list[int]]]
        n: int = Field(1, ge=1, le=256)
        max_tokens: int = Field(16, ge=1, le=4096)
        temperature: float = Field(1.0, ge=0.0, allow_inf_nan=False)
        top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
        logprobs: Optional[int] = Field(None, ge=0, le=20)  # top-k per token, as vLLM (at most 20)
        seed: Optional[int] = Field(None, ge=SEED_MIN, le=SEED_MAX)
        stop: Optional[Union[str, list[str]]] = None
        echo: bool = False
        ignore_eos: bool = False  # vLLM extension
        return_tokens_as_token_ids: bool = False  # vLLM extension
        prompt_seeds: Optional[list[int]] = None  # prmkit extension: one seed per prompt

    return CompletionRequest


def tokenize_request_model():
    """The pydantic body of /tokenize (vLLM's endpoint)."""
    from pydantic import BaseModel

    class TokenizeRequest(BaseModel):
        model: Optional[str] = None
        prompt: str
        add_special_tokens: bool = True

    return TokenizeRequest


def chat_request_model():
    """The pydantic body of /v1/chat/completions (OpenAI's fields and vLLM's / SGLang's extensions)."""
    from pydantic import BaseModel, Field

    class ChatRequest(BaseModel):
        model: Optional[str] = None
        messages: list[dict]
        n: int = Field(1, ge=1, le=256)
        max_tokens: Optional[int] = Field(None, ge=1, le=4096)
        max_completion_tokens: Optional[int] = Field(None, ge=1, le=4096)
        temperature: float = Field(1.0, ge=0.0, allow_inf_nan=False)
        top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
        logprobs: bool = False
        top_logprobs: Optional[int] = Field(None, ge=0, le=20)
        seed: Optional[int] = Field(None, ge=SEED_MIN, le=SEED_MAX)
        stop: Optional[Union[str, list[str]]] = None
        ignore_eos: bool = False  # vLLM extension
        return_tokens_as_token_ids: bool = False  # vLLM extension
        add_generation_prompt: bool = True  # vLLM / SGLang extension
        continue_final_message: bool = False  # vLLM / SGLang extension

    return ChatRequest
