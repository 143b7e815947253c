"""`prmkit sample`: sample solutions to problems with any sampler and grade them into traces.

The command above the library (`prmkit.policy.sample`): it resolves the gym defaults of `--model`
and `--problems` (`prmkit.resolve`), samples, grades and writes the run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prmkit.config import save_config
from prmkit.gym import task as gym_task  # called as gym_task.make_split: tests trace gym use through it
from prmkit.gym.task import check_prompts
from prmkit.policy.base import SamplingParams
from prmkit.policy.sample import make_sampler, sample_traces
from prmkit.prompting import PromptOptions
from prmkit.resolve import policy_path, problems_are_gym, read_problems
from prmkit.schema import write_records
from prmkit.steps import check_split_mode
from prmkit.tasks import has_own_steps


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


def run(cfg: SampleConfig) -> Path:
    out = Path(cfg.out)
    problems = read_problems(cfg.problems) if cfg.problems else gym_task.make_split(cfg.split, cfg.num_problems)
    check_prompts(problems, cfg.problems or None)
    if cfg.step_split:
        check_split_mode(cfg.step_split)
        if any(has_own_steps(p.task) for p in problems):
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
