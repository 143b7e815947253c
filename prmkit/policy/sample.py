"""Sample solutions to problems with any sampler and grade them into traces (the library of
`prmkit sample`, whose command lives in `prmkit.sample`)."""

from __future__ import annotations

from typing import Sequence

from prmkit.errors import InputError
from prmkit.policy.base import Completion, SamplingParams
from prmkit.progress import progress
from prmkit.prompting import PromptOptions, policy_input
from prmkit.schema import Problem, Trace
from prmkit.tasks import graded_trace


def completion_to_trace(problem: Problem, c: Completion, sample_index: int, step_split: str = "") -> Trace:
    """Grade one completion by its problem's task (`prmkit.tasks.graded_trace`): a task with its own
    steps and step gold (the gym) builds the trace itself; for the others `step_split` (a
    `prmkit.steps.split_solution` mode) re-splits the text into steps, and empty keeps the sampler's
    steps (split on its separator)."""
    meta = {"sample": sample_index, "num_tokens": len(c.token_ids), "finish_reason": c.finish_reason}
    return graded_trace(problem, c.text, c.steps, meta=meta, step_split=step_split)


def sample_traces(sampler, problems: Sequence[Problem], params: SamplingParams,
                  chunk: int = 64, desc: str = "sample", step_split: str = "") -> list[Trace]:
    traces: list[Trace] = []
    bar = progress(total=len(problems), desc=desc)
    for c in range(0, len(problems), chunk):
        part = problems[c:c + chunk]
        seeds = [params.seed * 1_000_003 + c + i for i in range(len(part))]
        groups = sampler.sample([policy_input(sampler, p.prompt) for p in part], params, seeds=seeds)
        for p, group in zip(part, groups):
            traces += [completion_to_trace(p, comp, j, step_split) for j, comp in enumerate(group)]
        bar.update(len(part))
    bar.close()
    return traces


def make_sampler(model: str, sampler: str = "hf", base_url: str = "", sep: str = "\n", batch_size: int = 64,
                 device: str = "", dtype: str = "float32", trust_remote_code: bool = False, kv_cache: int = 0,
                 prompt_options: PromptOptions | None = None, endpoint: str = "completions"):
    """The sampler named on the command line (strings map to backends here, once); device "" = auto.
    `model` is explicit for the hf backend (a command's gym default is chosen above this layer:
    `prmkit.resolve.policy_path` / `default_policy`). Its prompt format: the options given, else the
    one saved in the model dir, else raw text."""
    opts = prompt_options or PromptOptions()
    if sampler == "hf":
        from prmkit.policy.hf import HFSampler

        if not model:
            raise InputError("no policy model given (expected a model dir or hub id)", field="model")
        path = model
        s = HFSampler.from_pretrained(path, sep=sep, batch_size=batch_size, device=device,
                                      dtype=dtype or "float32", trust_remote_code=trust_remote_code,
                                      prompt_format=opts.resolve_format(path))
        s.set_kv_cache(kv_cache)
        return s
    if sampler == "openai":
        from prmkit.policy.openai import OpenAISampler

        if not base_url:
            raise InputError("--sampler openai needs --base-url (e.g. http://127.0.0.1:8000/v1)", field="base_url")
        return OpenAISampler(base_url=base_url, model=model or None, sep=sep, endpoint=endpoint,
                             prompt_format=opts.resolve_format(model))
    raise InputError(f"unknown sampler {sampler!r}; expected 'hf' or 'openai'", field="sampler")
