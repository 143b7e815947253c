"""`prmkit label`'s options (`LabelConfig`) and their checks, made before any input is read."""

from __future__ import annotations

from dataclasses import dataclass

from prmkit.errors import InputError
from prmkit.label.methods import get_labeller
from prmkit.prompting import PromptOptions


@dataclass
class LabelConfig(PromptOptions):
    """Label the steps of traces automatically (MC, OmegaPRM, SCAN, tools, judge, consensus, progress)."""

    CLI_CHOICES = {"method": "prmkit.label.methods:LABELLERS"}  # --help lists the registered names

    method: str = "mc"
    """labelling method, as registered in prmkit/label/methods.py"""
    traces: str = ""
    """input traces JSONL (prmkit schema)"""
    out: str = "runs/label"
    """run directory: labels.jsonl, config.json, cost.json; rerunning continues an interrupted run"""
    problems: str = ""
    """problems JSONL with gold answers (not needed for gym traces)"""
    model: str = ""
    """completer policy: local dir or hub id (empty: the shipped gym policy)"""
    sampler: str = "hf"
    """completer backend: hf or openai"""
    base_url: str = ""
    """server URL for --sampler openai"""
    sep: str = "\n"
    """step separator"""
    k: int = 8
    """rollouts per step prefix"""
    mode: str = "hard"
    """mc labels: hard (any rollout correct) or soft (fraction correct)"""
    max_new_tokens: int = 96
    """most tokens per rollout"""
    temperature: float = 1.0
    """rollout temperature"""
    seed: int = 0
    """base seed; trace i's rollouts use (seed, i)"""
    batch_size: int = 64
    """rows decoded together by the hf sampler"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    threads: int = 0
    """torch CPU threads per worker (0: torch's default; Ray actors use 1)"""
    chunk: int = 32
    """traces per unit of work (written together; the unit of resume and of Ray tasks)"""
    backend: str = "local"
    """local or ray"""
    workers: int = 2
    """Ray actors (each loads its own sampler)"""
    ray_address: str = ""
    """Ray cluster address (empty: start Ray locally)"""
    min_self_conf: float = 0.75
    """scan: keep questions whose self-confidence is at least this"""
    scan_window: int = 2
    """scan: steps before the MC error that get c/SC soft labels"""
    scan_robust: bool = True
    """scan: noise-tolerant soft labels (else hard)"""
    checker: str = "auto"
    """verify: auto | gym | calculator | sympy"""
    judge: str = "rule"
    """judge/consensus: rule (the gym's checker with --judge-error-rate; gym traces only) or lm"""
    judge_model: str = ""
    """lm judge: local dir or hub id (empty with no --judge-base-url: the gym policy, on gym traces only)"""
    judge_base_url: str = ""
    """lm judge: OpenAI-compatible endpoint"""
    judge_error_rate: float = 0.1
    """rule judge: probability of naming a wrong first-error location"""
    judge_max_new_tokens: int = 32
    """lm judge: most tokens of a verdict"""
    prover: str = ""
    """progress: prover policy dir or hub id (empty: the completer)"""
    prover_bok: int = 1
    """progress: Best-of-K prover, Q = 1 - (1 - Q_pi)^K (1 = the prover itself)"""
    eps: float = 0.8
    """progress: relative-progress threshold"""


# options that change how the work is run but not the output
RUNTIME_FIELDS = {"out", "backend", "workers", "ray_address", "chunk", "batch_size", "threads"}


def validate(cfg: LabelConfig) -> None:
    """An `InputError` naming the field for an unknown method or backend and for out-of-range options."""
    get_labeller(cfg.method)
    if cfg.backend not in ("local", "ray"):
        raise InputError(f"unknown backend {cfg.backend!r}; expected local or ray", field="backend")
    if cfg.k < 1:
        raise InputError(f"expected k >= 1, got {cfg.k}", field="k")
    if cfg.mode not in ("hard", "soft"):
        raise InputError(f"expected hard or soft, got {cfg.mode!r}", field="mode")
    if cfg.workers < 1:
        raise InputError(f"expected workers >= 1, got {cfg.workers}", field="workers")
    if not cfg.traces:
        raise InputError("--traces is required (a traces JSONL file)", field="traces")
