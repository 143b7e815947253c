"""Why MCTS ties greedy decoding with the shipped PRM: MCTS answer pools re-ranked by three verifiers.

    .venv/bin/python bench/mcts_verifiers.py        # ~15 min on 2 CPU cores (pools and models are cached)

On `long_dev` (nothing here looks at the long split) MCTS runs with the configuration and budget that
round 3 of the long_dev selection chose for the shipped PRM (POOL_CONFIG, POOL_BUDGET; pinned here so the
diagnosis stays that of the runs it explains) and the shipped PRM, for seeds 0, 1, 2; every finished solution
of every pool is kept (runs/mcts_pools/). The same pools are then re-ranked, with the bench's rule
(vote weighted by the min-aggregated score), by:

* `shipped` — the shipped gym PRM (policy backbone, 800 traces with MC labels, likelihood feature);
* `policy_backbone_tool_labels` — the same recipe on the policy backbone with 40x the data: the 32,000
  traces with exact tool labels of bench/strong_verifier.py;
* `strong_verifier` — bench/models/strong_verifier (the same data on a backbone trained 3,000 steps).

Reported per verifier: problems solved per seed and the within-pool AUC (a right solution of a problem
outscoring a wrong one of it; distinct solutions, problems with both). Reported per pool: problems with
a right answer, problems with an error-free chain (gym first error = none), and the share of distinct
right-answer solutions that hold a step error (right by compensating errors, which no step verifier
should prefer). Writes bench/results/mcts_verifiers.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PRMKIT_QUIET", "1")

SEEDS = (0, 1, 2)
POOLS = ROOT / "runs" / "mcts_pools"
POOL_CONFIG, POOL_BUDGET = "widen+merge, rollout-to-end, T=0.4", 2000   # prmkit.search.presets.MCTS_CONFIGS
WORK = ROOT / "runs" / "strong-verifier"
OUT = ROOT / "bench" / "results" / "mcts_verifiers.json"


def pool_file(split: str, seed: int, problems, sampler, rm) -> Path:
    """MCTS on `split` with POOL_CONFIG at POOL_BUDGET; one JSON line per problem with every finished solution."""
    from prmkit.schema import atomic_write_text
    from prmkit.search import SEARCHES, SearchParams

    path = POOLS / f"{split}-s{seed}.jsonl"
    if path.exists():
        return path
    from prmkit.search.presets import BASE, MCTS_CONFIGS, MCTS_DEFAULT, MCTS_MORE

    params = replace(SearchParams(tau=4, **BASE), token_budget=POOL_BUDGET, seed=seed,
                     **{**MCTS_DEFAULT, **MCTS_MORE, **MCTS_CONFIGS[POOL_CONFIG]})
    run = SEARCHES["mcts"](problems, sampler, rm, params)
    lines = [json.dumps({"id": r.problem.id, "chosen": r.chosen, "tokens": r.policy_tokens,
                         "sols": [[s.answer, s.correct, s.step_scores, "\n".join(s.steps)] for s in r.solutions]})
             for r in run.results]
    POOLS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def policy_backbone_prm() -> Path:
    """The tool-labelled recipe of bench/strong_verifier.py on the policy's own backbone."""
    from prmkit.label.checked_samples import checked_traces

    out = WORK / "prm-policy-backbone"
    if not (out / "prmkit_rm.json").exists():
        data = checked_traces(WORK)
        subprocess.run([sys.executable, "-m", "prmkit", "train", "prm", "--data", str(data), "--out", str(out),
                        "--lr", "3e-4", "--epochs", "1", "--batch-size", "32", "--threads", "2"], check=True, cwd=ROOT)
    return out


def weighted_pick(pool: list, scores: dict, pid: str) -> bool:
    """The bench's selection: answers voted by max(0, min-aggregated score); the winner's best-scored holder."""
    from prmkit.rewards.aggregate import aggregate

    cands = [s for s in pool if s[0] is not None]
    if not cands:
        return False
    votes: dict = defaultdict(float)
    for s in cands:
        votes[s[0]] += max(0.0, aggregate(scores[(pid, s[3])], "min"))
    best = max(votes.values())
    winner = next(s[0] for s in cands if votes[s[0]] == best)
    return next(s[1] for s in cands if s[0] == winner)


def within_pool_auc(pool: list, scores: dict, pid: str) -> float | None:
    from prmkit.rewards.aggregate import aggregate

    distinct = {s[3]: s for s in pool if s[0] is not None}.values()
    pos = [aggregate(scores[(pid, s[3])], "min") for s in distinct if s[1]]
    neg = [aggregate(scores[(pid, s[3])], "min") for s in distinct if not s[1]]
    if not pos or not neg:
        return None
    return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))


def main() -> None:
    import torch

    torch.set_num_threads(1)  # as bench/search.py: the pools do not depend on the machine's core count
    from prmkit.gym.task import first_error, make_split, parse_prompt
    from prmkit.policy.hf import HFSampler
    from prmkit.resolve import default_policy
    from prmkit.progress import progress
    from prmkit.rewards import default_gym_prm, load_reward_model
    from prmkit.schema import atomic_write_text

    t0 = time.perf_counter()
    problems = make_split("long_dev", 200)
    by_id = {p.id: p for p in problems}
    shipped = default_gym_prm()
    sampler = HFSampler.from_pretrained(default_policy(), batch_size=256)
    pools = {s: [json.loads(x) for x in pool_file("long_dev", s, problems, sampler, shipped).read_text().splitlines()]
             for s in SEEDS}
    facts = {}
    for s, recs in pools.items():
        right = clean = right_sols = right_with_error = 0
        for r in recs:
            chain = parse_prompt(by_id[r["id"]].prompt)
            distinct = list({x[3]: x for x in r["sols"] if x[0] is not None}.values())
            errs = [first_error(x[3].split("\n"), chain) for x in distinct]
            right += any(x[1] for x in distinct)
            clean += any(e == -1 for e in errs)
            right_sols += sum(x[1] for x in distinct)
            right_with_error += sum(x[1] and e != -1 for x, e in zip(distinct, errs))
        facts[s] = {"problems_with_right_answer": right, "problems_with_error_free_chain": clean,
                    "distinct_right_answer_solutions": right_sols,
                    "share_right_answers_with_step_error": round(right_with_error / max(1, right_sols), 4),
                    "as_run_solved": sum(r["sols"][r["chosen"]][1] for r in recs if r["chosen"] >= 0)}
    verifiers = {"shipped": shipped, "policy_backbone_tool_labels": load_reward_model(str(policy_backbone_prm())),
                 "strong_verifier": load_reward_model(str(ROOT / "bench" / "models" / "strong_verifier"))}
    keys = sorted({(r["id"], x[3]) for recs in pools.values() for r in recs for x in r["sols"]})
    rows = {}
    for name, rm in verifiers.items():
        scores = {}
        for i in progress(range(0, len(keys), 256), desc=f"score pools ({name})"):
            part = keys[i:i + 256]
            got = rm.score([by_id[pid].prompt for pid, _ in part], [text.split("\n") for _, text in part])
            scores.update(zip(part, got))
        solved, aucs = [], []
        for s in SEEDS:
            solved.append(sum(weighted_pick(r["sols"], scores, r["id"]) for r in pools[s]))
            aucs += [a for r in pools[s] if (a := within_pool_auc(r["sols"], scores, r["id"])) is not None]
        rows[name] = {"solved_per_seed": solved, "accuracy": round(sum(solved) / (200 * len(SEEDS)), 4),
                      "within_pool_auc": round(sum(aucs) / len(aucs), 4), "auc_problems": len(aucs)}
        print(name, json.dumps(rows[name]), flush=True)
    greedy = json.loads((ROOT / "bench" / "results" / "search_points" / "gymprm-long_dev-p200-v2" / "greedy-t0.json")
                        .read_text())[0]
    out = {"split": "long_dev", "problems": 200, "seeds": list(SEEDS),
           "mcts": f"config {POOL_CONFIG!r} at budget {POOL_BUDGET} (round 3's long_dev choice), guided by the "
                   "shipped PRM; pools re-ranked",
           "selection": "vote weighted by max(0, min-aggregated score); ties: first answer in pool order",
           "greedy_decoding_solved": round(greedy["accuracy"] * greedy["problems"]),
           "verifiers": rows, "pools": facts, "wall_s": round(time.perf_counter() - t0, 1)}
    atomic_write_text(OUT, json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
