"""`prmkit eval bon`: Best-of-N with reward models — accuracy vs N for argmax, majority and
reward-weighted vote under each aggregation, pass@k and CoT-pass@k, "Lessons" diagnostics and
attack probes (docs/methods.md, Lessons of PRMs, arXiv 2501.07301, search-and-learn; Snell et al., arXiv 2408.03314).

Curves average over `resamples` random size-N subsets of each problem's pool (`metrics.bon_accuracy_curve`);
N = pool size is the full pool. CoT-pass@k counts a sample only if its answer is right and no
step is wrong (gym gold first error; "Reinforcement Learning with Verifiable Rewards Implicitly
Incentivizes Correct Reasoning", Wen et al. 2025).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from prmkit.config import save_config
from prmkit.errors import InputError
from prmkit.evaluate.diagnostics import attack_probes, min_on_last_share, right_answer_wrong_step
from prmkit.evaluate.metrics import (
    bon_accuracy_curve, cot_pass_at_k, count_cot_correct, pass_at_k, predicted_first_error,
)
from prmkit.gym.samples import gym_traces
from prmkit.resolve import all_gym_prompts, check_file, parse_rm_spec
from prmkit.rewards.aggregate import aggregate
from prmkit.rewards.base import score_traces
from prmkit.schema import Trace, atomic_write_text, read_traces, write_records
from prmkit.tasks import GRADERS, answer_equivalence


@dataclass
class EvalBonConfig:
    """Best-of-N evaluation of reward models: BoN curves, votes, pass@k, CoT-pass@k, diagnostics, probes."""

    out: str = "runs/eval-bon"
    """run directory (bon.json, bon_traces.jsonl, config.json)"""
    models: str = ""
    """comma-separated reward-model specs (`prmkit.resolve`: dirs, hub ids, http(s)://, gym, checker); empty: the
    shipped gym PRM, on gym data only"""
    data: str = ""
    """traces JSONL, several per problem_id (empty: sample the gym --split)"""
    split: str = "long"
    """gym split sampled when --data is empty"""
    num_problems: int = 200
    """gym problems sampled when --data is empty"""
    n: int = 16
    """largest N (samples per problem)"""
    aggregations: str = "min,prod,last,mean"
    """comma-separated aggregations to compare (each model's own is the headline)"""
    resamples: int = 100
    """random subsets per N < n"""
    seed: int = 2
    """sampling and resampling seed"""
    batch_size: int = 64
    """traces per forward pass"""
    device: str = ""
    """torch device of local models (cpu, cuda, cuda:1, ...; empty = cuda if visible, else cpu)"""
    task: str = ""
    """task whose answer equivalence groups the votes (math: math-verify, gsm8k: equal numbers; empty: exact strings)"""


def powers_of_two(n: int) -> list[int]:
    ns, k = [], 1
    while k < n:
        ns.append(k)
        k *= 2
    return ns + [n]


def group_by_problem(traces: Sequence[Trace], n: int) -> list[list[int]]:
    """Indices of each problem's first `n` traces (in file order); every problem needs >= n."""
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(traces):
        groups.setdefault(t.problem_id, []).append(i)
    short = [(pid, len(g)) for pid, g in groups.items() if len(g) < n]
    if short:
        raise InputError(f"expected >= {n} traces per problem; {len(short)} problems have fewer, e.g. "
                         f"{short[0][0]!r} has {short[0][1]}", field="problem_id")
    return [g[:n] for g in groups.values()]


def outcome_curves(traces: Sequence[Trace], groups: Sequence[Sequence[int]], ns: Sequence[int],
                   resamples: int, seed: int, equivalent=None) -> dict:
    """Model-free references: majority vote curve, pass@k and (when gold first errors exist) CoT-pass@k.
    `equivalent`: the task's answer equivalence grouping votes (None = exact strings)."""
    cands = [[(traces[i].final_answer, (traces[i].outcome or 0) >= 0.5, 0.0) for i in g] for g in groups]
    out = {"majority": bon_accuracy_curve(cands, ns, "majority", seed, resamples, equivalent)}
    n = len(groups[0])
    out["pass_at_k"] = {k: sum(pass_at_k(n, sum(c[1] for c in cs), k) for cs in cands) / len(cands) for k in ns}
    if all(traces[i].first_error is not None for g in groups for i in g):
        cot = [count_cot_correct([traces[i].outcome or 0 for i in g], [traces[i].first_error for i in g]) for g in groups]
        out["cot_pass_at_k"] = {k: sum(cot_pass_at_k(n, c, k) for c in cot) / len(cot) for k in ns}
    return out


def model_curves(traces: Sequence[Trace], groups: Sequence[Sequence[int]], step_scores: Sequence[Sequence[float]],
                 aggregations: Sequence[str], ns: Sequence[int], resamples: int, seed: int,
                 equivalent=None) -> dict:
    """{aggregation: {"argmax": curve, "weighted": curve}} for one model's step scores."""
    out = {}
    for how in aggregations:
        cands = [[(traces[i].final_answer, (traces[i].outcome or 0) >= 0.5, aggregate(step_scores[i], how))
                  for i in g] for g in groups]
        out[how] = {rule: bon_accuracy_curve(cands, ns, rule, seed, resamples, equivalent)
                    for rule in ("argmax", "weighted")}
    return out


def model_diagnostics(rm, traces: Sequence[Trace], step_scores: Sequence[Sequence[float]]) -> dict:
    out: dict = {"min_on_last_share": min_on_last_share(step_scores)}
    if rm.threshold is not None and all(t.first_error is not None for t in traces):
        preds = [predicted_first_error(s, rm.threshold) for s in step_scores]
        out.update(right_answer_wrong_step(preds, [t.first_error for t in traces], [t.outcome for t in traces]))
    good = [aggregate(s, rm.aggregation) for s, t in zip(step_scores, traces) if (t.outcome or 0) >= 0.5]
    prompts = list(dict.fromkeys(t.prompt for t in traces))[:32]
    out["attack_probes"] = attack_probes(rm, prompts, good)
    return out


def model_name(path: str, rm) -> str:
    return f"{rm.kind}:{Path(path).name or path}" if path else f"{rm.kind}:shipped"


def vote_equivalence(cfg: EvalBonConfig):
    """The answer equivalence of --task for the votes; says so when a user's data votes by exact string."""
    if cfg.task and cfg.task not in GRADERS:
        raise InputError(f"unknown task {cfg.task!r}; expected one of {sorted(GRADERS)}", field="task")
    if not cfg.task:
        if cfg.data:
            print("votes group final answers by exact string; pass --task math (math-verify) or --task gsm8k "
                  "(equal numbers) to group equivalent answers")
        return None
    return answer_equivalence(cfg.task)


def run(cfg: EvalBonConfig) -> dict:
    out = Path(cfg.out)
    data = read_traces(check_file(cfg.data, "data", "graded traces")) if cfg.data else None
    gym = data is None or all_gym_prompts(t.prompt for t in data)
    specs = [parse_rm_spec(p, "models", gym) for p in [p for p in cfg.models.split(",") if p] or [""]]
    out.mkdir(parents=True, exist_ok=True)
    equivalent = vote_equivalence(cfg)
    traces = data if data is not None else gym_traces(cfg.split, cfg.num_problems, cfg.n, cfg.seed,
                                                      desc=f"sample {cfg.split}")
    groups = group_by_problem(traces, cfg.n)
    ns = powers_of_two(cfg.n)
    aggs = [a for a in cfg.aggregations.split(",") if a]
    res: dict = {"problems": len(groups), "n": cfg.n, "ns": ns, "resamples": cfg.resamples, "seed": cfg.seed,
                 "data": cfg.data or f"gym:{cfg.split}", **outcome_curves(traces, groups, ns, cfg.resamples, cfg.seed, equivalent),
                 "models": {}}
    for spec in specs:
        rm = spec.load("", cfg.device, **({"batch_size": cfg.batch_size} if spec.form in ("gym-prm", "local", "hub")
                                          else {}))
        scores = score_traces(rm, traces)
        name = model_name(spec.target, rm)
        curves = model_curves(traces, groups, scores, sorted(set(aggs) | {rm.aggregation}), ns, cfg.resamples, cfg.seed,
                              equivalent)
        res["models"][name] = {"kind": rm.kind, "aggregation": rm.aggregation, "curves": curves,
                               f"bon{cfg.n}_accuracy": curves[rm.aggregation]["argmax"][cfg.n],
                               **model_diagnostics(rm, traces, scores)}
        for t, s in zip(traces, scores):
            t.meta.setdefault("rm_scores", {})[name] = s
    save_config(out, cfg)
    write_records(out / "bon_traces.jsonl", traces)
    atomic_write_text(out / "bon.json", json.dumps(res, indent=2) + "\n")
    line = ", ".join(f"{k} BoN@{cfg.n} {v[f'bon{cfg.n}_accuracy']:.3f}" for k, v in res["models"].items())
    print(f"majority@{cfg.n} {res['majority'][cfg.n]:.3f}, pass@{cfg.n} {res['pass_at_k'][cfg.n]:.3f}; {line}")
    return res
