"""`prmkit search`: run one search strategy over a problem set with any policy and reward model.

    prmkit search --method beam --split long --num-problems 100 --n 16 --beam-width 4
    prmkit search --method early_reject --tau 4 --prm path/to/prm --model Qwen/Qwen2.5-Math-1.5B --sep $'\\n\\n'

Writes `traces.jsonl` (every candidate, graded, with its step scores; `meta.selected` marks the
answer), `results.json` (accuracy, per-problem answers and tokens, the compute record) and
`config.json`; MCTS also writes `trees.jsonl` (one tree per problem, for value targets).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from prmkit.config import save_config
from prmkit.errors import InputError
from prmkit.policy.sample import make_sampler
from prmkit.prompting import PromptOptions, record_format
from prmkit.ray_pool import check_backend, check_servers
from prmkit.resolve import parse_rm_spec, policy_path, problems_are_gym, read_problems
from prmkit.schema import atomic_write_text, write_records
from prmkit.search import SEARCHES
from prmkit.search.base import SearchParams
from prmkit.search.pav import PAVScorer
from prmkit.search.ray_backend import search_ray


@dataclass
class SearchSources(PromptOptions):
    """Where the problems, the policy and the reward model come from (`prmkit search` and `eval search`)."""

    problems: str = ""
    """problems JSONL in prmkit's schema (empty: the gym split below)"""
    split: str = "long"
    """gym split used when --problems is empty"""
    num_problems: int = 100
    """gym problems to draw when --problems is empty"""
    model: str = ""
    """policy: local dir or hub id (empty: the shipped gym policy)"""
    sampler: str = "hf"
    """policy backend: 'hf' or 'openai' (vLLM/SGLang/prmkit serve-policy)"""
    base_url: str = ""
    """policy server URL for --sampler openai"""
    prm: str = ""
    """reward model: a saved dir or hub id, http(s)://host:port of `prmkit serve` (remote:<url> also works),
    'gym' (the shipped gym PRM), 'checker[:flip_rate]' (the gym's exact checker); empty: the shipped gym PRM,
    on gym problems only"""
    prm_token: str = ""
    """bearer token of a remote --prm server (empty: $PRMKIT_RM_TOKEN)"""
    flip_rate: float = 0.0
    """--prm checker only: probability of flipping each verdict (a noisy verifier)"""
    readout: str = ""
    """how to read an external PRM without prmkit_rm.json (trl, math-shepherd, qwen2.5-math-prm, rlhflow, ...)"""
    trust_remote_code: bool = False
    """run the models' own modeling code (the policy's and the PRM's; needed by PRMs whose head is custom code,
    e.g. Qwen2.5-Math-PRM)"""
    sep: str = "\n"
    """step separator of the policy's solutions"""
    batch_size: int = 256
    """rows decoded together (hf backend)"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    dtype: str = "float32"
    """dtype of local models' weights (float32, bfloat16, float16)"""
    prm_kv_cache: int = 0
    """keep the keys/values of up to this many scored positions in a local classifier PRM, so extending a
    scored prefix runs only the new tokens (0 = off; lm.kv_prefix)"""
    policy_kv_cache: int = 0
    """keep the keys/values of up to this many prompt positions in a local (hf) policy across calls, so a
    prompt extending an earlier one prefills only its new tokens (0 = off)"""
    threads: int = 0
    """torch CPU threads (0 = leave torch's default)"""

    def check(self):
        """(problems, policy name, reward-model spec): every source read or checked, no model loaded. Gym
        defaults (policy, PRM) apply on gym problems only (`prmkit.resolve`)."""
        from prmkit.gym.task import check_prompts, make_split

        problems = read_problems(self.problems) if self.problems else make_split(self.split, self.num_problems)
        check_prompts(problems, self.problems or None)
        gym = problems_are_gym(problems)
        model = policy_path(self.model, "model", gym) if self.sampler == "hf" else self.model
        spec = parse_rm_spec(self.prm, "prm", gym, self.prm_token, self.flip_rate)
        if self.flip_rate and spec.form != "checker":
            raise InputError(f"--flip-rate applies to the gym checker only (--prm checker), not to the "
                             f"{spec.describe()}", field="flip_rate")
        if self.prm_kv_cache and spec.form in ("checker", "remote"):
            raise InputError(f"--prm-kv-cache needs a local discriminative PRM, not the {spec.describe()} (a server "
                             "caches prefixes itself)", field="prm_kv_cache")
        return problems, model, spec

    def load(self, aggregation: str = ""):
        """(problems, sampler, reward model) as these fields name them; sets torch's CPU threads. Every
        source is checked (`check`) before the first model loads."""
        problems, model, spec = self.check()
        return (problems, *self.load_models(model, spec, aggregation))

    def load_models(self, model: str, spec, aggregation: str = ""):
        """(sampler, reward model) for a policy and reward-model spec `check` returned; sets torch's CPU threads."""
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        sampler = make_sampler(model, self.sampler, self.base_url, self.sep, self.batch_size, device=self.device,
                               dtype=self.dtype, trust_remote_code=self.trust_remote_code,
                               kv_cache=self.policy_kv_cache, prompt_options=self)
        rm = with_kv_cache(spec.load(aggregation, self.device, self.readout, self.trust_remote_code, self.dtype),
                           self.prm_kv_cache)
        return sampler, rm


@dataclass
class SearchConfig(SearchParams, SearchSources):
    """Run a PRM-guided search strategy (best_of_n, beam, dvts, early_reject, mcts) over problems.

    The search knobs are `SearchParams`'s own fields and the problem / model fields `SearchSources`'s
    (both inherited with their docs), so the command line and the library cannot drift apart."""

    CLI_CHOICES = {"method": "prmkit.search:SEARCHES"}  # --help lists the registered names

    out: str = "runs/search"
    """run directory (traces.jsonl, results.json, config.json)"""
    method: str = "beam"
    """search strategy, as registered with @search_strategy in prmkit/search/"""
    prover: str = ""
    """PAV ranking: a second reward model read as the prover's Q (same forms as --prm); empty = off"""
    pav_alpha: float = 0.5
    """PAV ranking: score = Q_base + alpha x prover progress"""
    n: int = 16
    """compute budget N: samples (best_of_n), active beams (beam, early_reject), total leaves (dvts)"""
    backend: str = "local"
    """local or ray (problems go to --workers Ray actors, each loading its own policy and reward model; the
    same records as local)"""
    workers: int = 2
    """Ray actors (each loads its own policy and reward model)"""
    ray_address: str = ""
    """Ray cluster address (empty: start Ray here with --workers CPUs)"""
    chunk: int = 0
    """--backend ray: problems per Ray task (0 = the problems split evenly over the workers)"""
    prm_servers: list[str] = field(default_factory=list)
    """--backend ray with a --prm server: more `prmkit serve` URLs; actor i uses the i-th of (--prm, these...)"""
    policy_servers: list[str] = field(default_factory=list)
    """--backend ray with --sampler openai: more policy server URLs; actor i uses the i-th of (--base-url,
    these...)"""


PARAM_FIELDS = tuple(f.name for f in fields(SearchParams))


def make_reward_model(spec: str, flip_rate: float = 0.0, aggregation: str = "", device: str = "",
                      readout: str = "", trust_remote_code: bool = False, dtype: str = "", kv_cache: int = 0,
                      token: str = ""):
    """The reward model a spec names (`prmkit.resolve.parse_rm_spec`'s grammar; empty = the shipped gym PRM)."""
    rm = parse_rm_spec(spec, "prm", True, token, flip_rate).load(aggregation, device, readout, trust_remote_code,
                                                                   dtype)
    return with_kv_cache(rm, kv_cache)


def with_kv_cache(rm, kv_cache: int):
    """`rm` keeping up to `kv_cache` scored positions (0 = off); only a local discriminative PRM can."""
    if kv_cache:
        if not hasattr(rm, "set_kv_cache"):
            raise InputError(f"--prm-kv-cache needs a local discriminative PRM; {type(rm).__name__} has no "
                             "key/value prefix cache (a server caches prefixes itself)", field="prm_kv_cache")
        rm.set_kv_cache(kv_cache)
    return rm


def search_params(cfg) -> SearchParams:
    return SearchParams(**{k: getattr(cfg, k) for k in PARAM_FIELDS if hasattr(cfg, k)})


def check(cfg: SearchConfig):
    """(params, problems, policy name, reward-model specs — --prm's, then each of --prm-servers —, prover spec or
    None): every option and source checked, no model loaded."""
    if cfg.method not in SEARCHES:
        raise InputError(f"unknown method {cfg.method!r}; expected one of {sorted(SEARCHES)}", field="method")
    check_backend(cfg.backend, cfg.workers)
    if cfg.chunk < 0:
        raise InputError(f"expected chunk >= 0 (0 = split evenly over the workers), got {cfg.chunk}", field="chunk")
    params = search_params(cfg)
    prover = parse_rm_spec(cfg.prover, "prover", True, cfg.prm_token, cfg.flip_rate) if cfg.prover else None
    problems, model, spec = cfg.check()
    check_servers(cfg.prm_servers, "prm_servers", cfg.backend, spec.form == "remote", "prm")
    check_servers(cfg.policy_servers, "policy_servers", cfg.backend,
                  cfg.sampler == "openai" and cfg.base_url.startswith(("http://", "https://")), "base_url")
    specs = [spec] + [parse_rm_spec(url, "prm_servers", True, cfg.prm_token) for url in cfg.prm_servers]
    return params, problems, model, specs, prover


def load_models(cfg: SearchConfig, model: str, spec, prover):
    """(sampler, reward model) of one search process: the PRM wrapped with PAV's prover when --prover is set."""
    sampler, rm = cfg.load_models(model, spec, cfg.aggregation)
    if prover is not None:
        rm = PAVScorer(rm, prover.load(cfg.aggregation, cfg.device), cfg.pav_alpha)
    return sampler, rm


def run(cfg: SearchConfig) -> dict:
    params, problems, model, specs, prover = check(cfg)          # everything checked before any load
    if cfg.backend == "ray" and problems:
        result, sampler = search_ray(cfg, params, problems, model, specs, prover, load_models)
    else:
        sampler, rm = load_models(cfg, model, specs[0], prover)
        result = SEARCHES[cfg.method](problems, sampler, rm, params)
    out = Path(cfg.out)
    save_config(out, cfg)

    record_format(out, sampler)  # the policy's (the reward model's is in its own dir)
    summary = write_run(out, cfg.method, params, result)
    ef = result.error_free_accuracy
    print(f"{cfg.method}: accuracy {result.accuracy:.3f}" + ("" if ef is None else f" (right with no step error: {ef:.3f})")
          + f" on {len(problems)} problems; policy tokens "
          f"{result.compute.policy_tokens}, PRM tokens {result.compute.prm_tokens}, FLOPs {result.compute.flops:.3e} "
          f"-> {out}")
    return summary


def write_run(out: Path, method: str, params: SearchParams, result) -> dict:
    """traces.jsonl, results.json (returned) and, for MCTS, trees.jsonl of a finished search."""
    write_records(out / "traces.jsonl", result.to_traces())
    summary = {**result.summary(), "params": asdict(params),
               "per_problem": [{"id": r.problem.id, "answer": r.answer, "correct": r.correct,
                             "policy_tokens": r.policy_tokens, "candidates": len(r.solutions)}
                            for r in result.results]}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    if method == "mcts":
        atomic_write_text(out / "trees.jsonl", "".join(json.dumps({"problem_id": r.problem.id, "nodes": r.meta["tree"]})
                                                       + "\n" for r in result.results))
    return summary
