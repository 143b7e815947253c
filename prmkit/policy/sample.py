"""`prmkit sample`: sample solutions to problems with any sampler and grade them into traces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from prmkit.policy.base import Completion, SamplingParams
from prmkit.prompting import PromptOptions, policy_input
from prmkit.schema import Problem, Trace


@dataclass
class SampleConfig(PromptOptions):
    """Sample N solutions per problem from a policy and grade them."""

    out: str = "runs/sample"
    """run directory (traces.jsonl, config.json)"""
    problems: str = ""
    """problems JSONL in prmkit's schema (empty: the gym split below)"""
    split: str = "test"
    """gym split used when --problems is empty"""
    num_problems: int = 100
    """gym problems to draw when --problems is empty"""
    model: str = ""
    """local dir or hub id of the policy (empty: the shipped gym policy)"""
    sampler: str = "hf"
    """backend: 'hf' (local transformers) or 'openai' (a vLLM/SGLang/prmkit serve-policy server)"""
    base_url: str = ""
    """server URL for --sampler openai, e.g. http://127.0.0.1:8000/v1"""
    endpoint: str = "completions"
    """--sampler openai: 'completions' (text in) or 'chat' (/v1/chat/completions, messages in)"""
    sep: str = "\n"
    """step separator of the policy's solutions"""
    step_split: str = ""
    """split non-gym solutions by a named mode: double_newline (blank lines, else lines), newline,
    regex:<pattern>, step_markers ("Step k:"); empty: on --sep. Gym traces are always split on lines"""
    n: int = 4
    """samples per problem"""
    max_new_tokens: int = 128
    """most tokens per sample"""
    temperature: float = 1.0
    """sampling temperature (0 = greedy)"""
    top_p: float = 1.0
    """nucleus mass"""
    seed: int = 0
    """sampling seed"""
    batch_size: int = 64
    """rows decoded together (hf backend)"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    dtype: str = "float32"
    """dtype of local models' weights (float32, bfloat16, float16)"""
    trust_remote_code: bool = False
    """run the model's own modeling code (hub models whose architecture is custom code)"""


def completion_to_trace(problem: Problem, c: Completion, sample_index: int, step_split: str = "") -> Trace:
    """Grade one completion: the gym gets exact gold first errors, other tasks their grader.
    `step_split` (a `prmkit.steps.split_solution` mode) re-splits a non-gym completion's text into
    steps; empty keeps the sampler's steps (split on its separator)."""
    meta = {"sample": sample_index, "num_tokens": len(c.token_ids), "finish_reason": c.finish_reason}
    if problem.task == "gym":
        from prmkit.gym.task import make_trace

        return make_trace(problem, c.text, meta=meta)
    from prmkit.tasks import get_grader

    grader = get_grader(problem.task)
    answer = grader.extract_answer(c.text)
    steps = c.steps
    if step_split:
        from prmkit.steps import split_solution

        steps = split_solution(c.text, step_split)
    return Trace(problem_id=problem.id, prompt=problem.prompt, steps=steps or [c.text], final_answer=answer,
                 outcome=float(grader.is_correct(answer, problem.answer)), meta=meta)


def sample_traces(sampler, problems: Sequence[Problem], params: SamplingParams,
                  chunk: int = 64, desc: str = "sample", step_split: str = "") -> list[Trace]:
    from prmkit.progress import progress

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
    Its prompt format: the options given, else the one saved in the model dir, else raw text."""
    opts = prompt_options or PromptOptions()
    if sampler == "hf":
        from prmkit.policy.hf import HFSampler

        path = model or default_policy()
        s = HFSampler.from_pretrained(path, sep=sep, batch_size=batch_size, device=device,
                                      dtype=dtype or "float32", trust_remote_code=trust_remote_code,
                                      prompt_format=opts.resolve_format(path))
        s.set_kv_cache(kv_cache)
        return s
    if sampler == "openai":
        from prmkit.policy.openai import OpenAISampler

        if not base_url:
            from prmkit.errors import InputError

            raise InputError("--sampler openai needs --base-url (e.g. http://127.0.0.1:8000/v1)", field="base_url")
        return OpenAISampler(base_url=base_url, model=model or None, sep=sep, endpoint=endpoint,
                             prompt_format=opts.resolve_format(model))
    from prmkit.errors import InputError

    raise InputError(f"unknown sampler {sampler!r}; expected 'hf' or 'openai'", field="sampler")


def default_policy() -> str:
    from prmkit.gym.train_policy import SHIPPED_POLICY_DIR

    return str(SHIPPED_POLICY_DIR)


def run(cfg: SampleConfig) -> Path:
    from prmkit.config import save_config
    from prmkit.gym.task import check_prompts, make_split
    from prmkit.resolve import policy_path, problems_are_gym, read_problems
    from prmkit.schema import write_records

    out = Path(cfg.out)
    problems = read_problems(cfg.problems) if cfg.problems else make_split(cfg.split, cfg.num_problems)
    check_prompts(problems, cfg.problems or None)
    if cfg.step_split:
        from prmkit.steps import check_split_mode

        check_split_mode(cfg.step_split)
        if any(p.task == "gym" for p in problems):
            print("note: gym traces are split on lines (the gym's step definition); --step-split applies to the others")
    model = policy_path(cfg.model, "model", problems_are_gym(problems)) if cfg.sampler == "hf" else cfg.model
    sampler = make_sampler(model, cfg.sampler, cfg.base_url, cfg.sep, cfg.batch_size, device=cfg.device,
                           dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code, prompt_options=cfg,
                           endpoint=cfg.endpoint)
    params = SamplingParams(n=cfg.n, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                            top_p=cfg.top_p, seed=cfg.seed)
    traces = sample_traces(sampler, problems, params, step_split=cfg.step_split)
    save_config(out, cfg)
    sampler.prompt_format.save(out)
    write_records(out / "traces.jsonl", traces)
    acc = sum(t.outcome or 0 for t in traces) / max(1, len(traces))
    print(f"wrote {len(traces)} traces to {out / 'traces.jsonl'} (accuracy {acc:.3f})")
    return out
