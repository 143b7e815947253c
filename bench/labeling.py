"""Automatic step labels on the gym vs gold first errors, their cost, and prefix sharing.

    .venv/bin/python bench/labeling.py            # writes bench/results/labeling.json

1. `test` split: traces sampled by the shipped policy (T=1); labels by mc_hard, mc_soft (the same
   rollouts, soft rule), omega, scan, verify (+ judge/consensus with the rule judge) with the
   shipped policy as completer; first-error agreement with gold, rollouts and policy tokens/trace.
2. `long` split (traces of >= 6 steps): omega vs mc rollouts per trace at the same K.
3. Prefix sharing: sampler forward tokens of mc (K=8) with and without KV-prefix reuse.
Seeds, sizes and K are fixed below and written into the JSON; nothing is tuned on these data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("PRMKIT_QUIET", "1")

RESULTS = Path(__file__).resolve().parent / "results" / "labeling.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--test-problems", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4, help="traces per problem")
    ap.add_argument("--long-problems", type=int, default=60)
    ap.add_argument("--long-samples", type=int, default=2)
    ap.add_argument("--sharing-traces", type=int, default=32)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--judge-error-rate", type=float, default=0.1)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from prmkit.gym.task import make_split
    from prmkit.label import rules
    from prmkit.label.judge import RuleJudge
    from prmkit.label.mc import label_mc, mc_labels_from_counts
    from prmkit.label.omega import label_omega
    from prmkit.label.report import DEFINITION, evaluate_labels
    from prmkit.label.rollouts import Cost
    from prmkit.label.scan import label_scan
    from prmkit.label.verify import label_verify
    from prmkit.policy.base import SamplingParams
    from prmkit.policy.hf import HFSampler
    from prmkit.policy.sample import sample_traces
    from prmkit.resolve import default_policy

    t_start = time.perf_counter()
    sampler = HFSampler.from_pretrained(default_policy())
    K, seed = args.k, args.seed
    sample_params = SamplingParams(n=args.samples, max_new_tokens=96, temperature=1.0, seed=seed)
    traces = sample_traces(sampler, make_split("test", args.test_problems), sample_params)

    methods, wall = {}, {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        wall[name] = round(time.perf_counter() - t0, 2)
        print(f"[{time.perf_counter() - t_start:7.1f} s] {name}: {wall[name]} s", flush=True)
        return out

    mc_hard = timed("mc_hard", lambda: label_mc(traces, sampler, k=K, mode="hard", seed=seed))
    mc_soft = [mc_labels_from_counts(t, t.labels.meta["correct_counts"],
                                     Cost(t.labels.rollouts, t.labels.policy_tokens), K, "soft") for t in mc_hard]
    wall["mc_soft"] = wall["mc_hard"]
    omega = timed("omega", lambda: label_omega(traces, sampler, k=K, seed=seed))
    scan = timed("scan", lambda: label_scan(traces, sampler, k=K, seed=seed))
    verify = timed("verify", lambda: label_verify(traces))
    for name, labelled in [("mc_hard", mc_hard), ("mc_soft", mc_soft), ("omega", omega), ("scan", scan),
                           ("verify", verify)]:
        methods[name] = {**evaluate_labels(labelled), "wall_s": wall[name]}

    # consensus: the mc_hard first error vs a rule judge that errs with probability judge_error_rate
    verdicts = RuleJudge(args.judge_error_rate, seed).judge(list(enumerate(traces)))
    kept = [t for t, v in zip(mc_hard, verdicts)
            if rules.consensus_keep(rules.first_error_from_labels(t.labels.values), v["first_error"])]
    judge_agree = sum(v["first_error"] == t.first_error for t, v in zip(traces, verdicts)) / len(traces)
    consensus = {"judge": "rule", "judge_error_rate": args.judge_error_rate, "judge_agreement": judge_agree,
                 "kept_fraction": len(kept) / len(traces),
                 "first_error_agreement_kept": sum(rules.first_error_from_labels(t.labels.values) == t.first_error
                                                   for t in kept) / max(1, len(kept)),
                 "mc_hard_first_error_agreement_all": methods["mc_hard"]["first_error_agreement"]}

    # long split: omega vs mc at the same K
    long_traces = sample_traces(sampler, make_split("long", args.long_problems),
                                SamplingParams(n=args.long_samples, max_new_tokens=160, temperature=1.0, seed=seed))
    long_traces = [t for t in long_traces if len(t.steps) >= 6]
    long_mc = timed("long_mc", lambda: label_mc(long_traces, sampler, k=K, seed=seed, max_new_tokens=160))
    long_omega = timed("long_omega", lambda: label_omega(long_traces, sampler, k=K, seed=seed, max_new_tokens=160))
    long = {"mc_hard": {**evaluate_labels(long_mc), "wall_s": wall["long_mc"]},
            "omega": {**evaluate_labels(long_omega), "wall_s": wall["long_omega"]}}
    ratio = long["omega"]["rollouts_per_trace"] / long["mc_hard"]["rollouts_per_trace"]
    long["omega_vs_mc_rollout_ratio"] = ratio
    long["agreement_gap"] = long["omega"]["first_error_agreement"] - long["mc_hard"]["first_error_agreement"]
    long["targets"] = {"rollout_ratio_max": 0.40, "agreement_gap_min": -0.02,
                       "met": ratio <= 0.40 and long["agreement_gap"] >= -0.02}

    # prefix sharing: forward tokens of mc K=8 with vs without KV-prefix reuse
    share_traces = traces[:args.sharing_traces]
    fwd = {}
    for share in (True, False):
        sampler.stats.forward_tokens = sampler.stats.generated_tokens = 0
        t0 = time.perf_counter()
        lab = label_mc(share_traces, sampler, k=8, seed=seed, share_prefix=share)
        fwd[share] = {"forward_tokens": sampler.stats.forward_tokens,
                      "generated_tokens": sampler.stats.generated_tokens,
                      "wall_s": round(time.perf_counter() - t0, 2),
                      "labels": [t.labels.values for t in lab]}
    sharing = {"k": 8, "traces": len(share_traces),
               "with_reuse": {k: v for k, v in fwd[True].items() if k != "labels"},
               "without_reuse": {k: v for k, v in fwd[False].items() if k != "labels"},
               "labels_identical": fwd[True]["labels"] == fwd[False]["labels"]}
    sharing_ratio = fwd[True]["forward_tokens"] / fwd[False]["forward_tokens"]

    result = {
        "methods": {m: {"first_error_agreement": v["first_error_agreement"],
                        "rollouts_per_trace": v["rollouts_per_trace"],
                        "policy_tokens_per_trace": v["policy_tokens_per_trace"], **v} for m, v in methods.items()},
        "omega_vs_mc_rollout_ratio": ratio,
        "prefix_sharing_forward_token_ratio": sharing_ratio,
        "long": long,
        "consensus": consensus,
        "prefix_sharing": sharing,
        "definition": DEFINITION + "; mc_soft uses the mc_hard rollouts with the soft rule and threshold 0.5; "
                      "scan agreement is over the traces it keeps (coverage says how many)",
        "setup": {"policy": "shipped gym policy (sampler and completer)", "seed": seed, "k": K,
                  "test_problems": args.test_problems, "samples_per_problem": args.samples,
                  "test_traces": len(traces), "test_accuracy": sum(t.outcome for t in traces) / len(traces),
                  "long_problems": args.long_problems, "long_samples": args.long_samples,
                  "long_traces": len(long_traces), "rollout_max_new_tokens": {"test": 96, "long": 160},
                  "temperature": 1.0, "scan_min_self_conf": 0.75, "scan_window": 2,
                  "threads": args.threads, "cpu": platform.processor() or platform.machine(),
                  "total_wall_s": round(time.perf_counter() - t_start, 1)},
    }
    out = Path(args.out)
    from prmkit.schema import atomic_write_text

    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    for m, v in result["methods"].items():
        print(f"{m:>8}: agreement {v['first_error_agreement']:.3f} (coverage {v['coverage']:.2f}), "
              f"{v['rollouts_per_trace']:.1f} rollouts/trace, {v['policy_tokens_per_trace']:.0f} tokens/trace, "
              f"{v['wall_s']} s")
    print(f"long ({len(long_traces)} traces): mc {long['mc_hard']['first_error_agreement']:.3f} @ "
          f"{long['mc_hard']['rollouts_per_trace']:.1f} rollouts, omega {long['omega']['first_error_agreement']:.3f} @ "
          f"{long['omega']['rollouts_per_trace']:.1f}; ratio {ratio:.3f}")
    print(f"prefix sharing forward-token ratio {sharing_ratio:.3f}; consensus {consensus}")
    print(f"wrote {out} in {result['setup']['total_wall_s']} s")


if __name__ == "__main__":
    main()
