"""`prmkit score`: step scores (and the aggregated response score) of every trace in a file.

All step scores of a trace come from one forward pass of the reward model, traces batched and
sorted by length (see `rewards.discriminative`). Output: the input traces with
`meta["rm"] = {"step_scores": [...], "score": s, "aggregation": ..., "kind": ...}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ScoreConfig:
    """Score every step of every trace with a reward model (one forward pass per trace)."""

    traces: str = ""
    """input traces (prmkit JSONL, TRL stepwise JSONL, or a ProcessBench JSON split)"""
    out: str = "runs/score"
    """run directory (scored.jsonl, config.json)"""
    model: str = ""
    """reward model (`prmkit.resolve`'s grammar): a dir or hub id, http(s)://host:port of `prmkit serve`, 'gym',
    'checker[:flip_rate]'; empty: the shipped gym PRM, on gym traces only"""
    aggregation: str = ""
    """response-score aggregation (empty: the model's own)"""
    readout: str = ""
    """how to read an external PRM without prmkit_rm.json (trl, math-shepherd, qwen2.5-math-prm, rlhflow, ...)"""
    trust_remote_code: bool = False
    """run the model's own modeling code (needed by PRMs whose head is custom code, e.g. Qwen2.5-Math-PRM)"""
    batch_size: int = 64
    """traces per forward pass"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    dtype: str = "float32"
    """dtype of local models' weights (float32, bfloat16, float16)"""
    threads: int = 0
    """torch threads (0 = torch's default)"""
    max_length: int = 0
    """most tokens per scored sequence (0 = the model's context); a longer trace is refused before any forward pass"""
    pack_tokens: int = 0
    """pack whole traces into rows of at most this many tokens, no padding (position ids restart per trace;
    checked once that the model keeps packed traces apart; for GPU variable-length attention, slower on CPU:
    docs/scale.md); 0 = length-sorted padded batches of --batch-size"""
    backend: str = "local"
    """local or ray (the model's batches go to --workers Ray actors, each loading the model; same output)"""
    workers: int = 2
    """Ray actors (each loads its own reward model)"""
    ray_address: str = ""
    """Ray cluster address (empty: start Ray here with --workers CPUs)"""
    servers: list[str] = field(default_factory=list)
    """with --backend ray and a --model server: more `prmkit serve` URLs; actor i uses the i-th of
    (--model, these...) in turn"""


def run(cfg: ScoreConfig) -> Path:
    import time

    from prmkit.config import save_config
    from prmkit.evaluate.processbench import write_scored
    from prmkit.rewards.base import score_traces

    traces, specs = check(cfg)                                   # read and checked before any model loads
    t0 = time.perf_counter()
    if cfg.backend == "ray" and traces:
        from prmkit.score_ray import score_ray

        scores, rm = score_ray(cfg, specs, traces, load_model)
    else:
        rm = load_model(cfg, specs[0])
        t0 = time.perf_counter()
        scores = score_traces(rm, traces)
    dt = time.perf_counter() - t0
    out = Path(cfg.out)
    save_config(out, cfg)
    from prmkit.prompting import record_format

    record_format(out, rm)  # the format the model read the traces with (saved in its dir)
    write_scored(out / "scored.jsonl", traces, scores, rm)
    print(f"scored {len(traces)} traces ({sum(map(len, scores))} steps, {rm.stats.tokens_scored} tokens) in "
          f"{dt:.1f}s -> {out / 'scored.jsonl'}")
    return out


def check(cfg: ScoreConfig) -> tuple[list, list]:
    """(traces, reward-model specs: --model's, then each of --servers): every option and the input read and
    checked, no model loaded."""
    from prmkit.errors import InputError
    from prmkit.ray_pool import check_backend, check_servers
    from prmkit.resolve import all_gym_prompts, is_hub_id, parse_rm_spec

    check_backend(cfg.backend, cfg.workers)
    if not cfg.traces:
        raise InputError("expected a traces file (--traces)", field="traces")
    if not Path(cfg.traces).exists() and not is_hub_id(cfg.traces):
        raise InputError("no such file or directory (expected traces to score)", file=cfg.traces, field="traces")
    traces = _read(cfg.traces)
    gym = all_gym_prompts(t.prompt for t in traces)
    spec = parse_rm_spec(cfg.model, "model", gym)
    check_servers(cfg.servers, "servers", cfg.backend, spec.form == "remote", "model")
    if cfg.pack_tokens < 0 or (cfg.pack_tokens and spec.form not in ("gym-prm", "local", "hub")):
        raise InputError(f"--pack-tokens needs a local discriminative PRM and a count >= 0, not "
                         f"{cfg.pack_tokens} with the {spec.describe()}", field="pack_tokens")
    if cfg.pack_tokens:
        from prmkit.data import SHIPPED_PRM_DIR
        from prmkit.rewards.discriminative_packed import check_packable

        check_packable(SHIPPED_PRM_DIR if spec.form == "gym-prm" else spec.target)
    return traces, [spec] + [parse_rm_spec(url, "servers", gym) for url in cfg.servers]


def load_model(cfg: ScoreConfig, spec):
    """The reward model `spec` names, loaded with this config's device, dtype, batch size, length limit and
    packing."""
    from prmkit.rewards.discriminative_packed import apply_packing
    from prmkit.train.config import set_threads

    set_threads(cfg.threads)
    rm = spec.load(cfg.aggregation, cfg.device, cfg.readout, cfg.trust_remote_code, cfg.dtype,
                   **({"batch_size": cfg.batch_size} if spec.form in ("gym-prm", "local", "hub") else {}))
    if cfg.max_length and hasattr(rm, "max_length"):
        rm.max_length = cfg.max_length
    apply_packing(rm, cfg.pack_tokens)
    return rm


def _read(path: str):
    from prmkit.evaluate.processbench import read_eval_traces
    from prmkit.train.data import read_training_traces

    if path.endswith(".json"):
        return read_eval_traces(path)
    return read_training_traces(path)
