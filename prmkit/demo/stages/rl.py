"""The RL stage of `prmkit demo`: a short outcome-GRPO run and a short PRIME run on the gym
from the shipped policy, held-out accuracy before and after, and their curves (one PNG)."""

from __future__ import annotations

import time
from pathlib import Path

from prmkit.rl.config import RLConfig
from prmkit.rl.trainer import RLRun

DEMO_RUN = dict(steps=6, prompts_per_step=8, k=8, lr=3e-5, lr_1d_mult=100.0, minibatch=32, gym_max_ops=5, eval_every=3,
                eval_problems=100, eval_split="test", max_new_tokens=96, tensorboard=False, save_policy=False,
                threads=1)


def demo_stage(out_dir: Path, seed: int) -> dict:
    """Run GRPO and PRIME for a few steps (same seed and budget); returns flat headline numbers and the plot."""
    import matplotlib  # (the backend is chosen before pyplot loads)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"steps": DEMO_RUN["steps"], "prompts_per_step": DEMO_RUN["prompts_per_step"],
                    "k": DEMO_RUN["k"], "eval_problems": DEMO_RUN["eval_problems"]}
    fig, ax = plt.subplots(figsize=(6, 3.6))
    t0 = time.perf_counter()
    for method in ("grpo", "prime"):
        records = RLRun(RLConfig(out=str(out_dir / method), reward=method, seed=seed, **DEMO_RUN)).train()
        evals = [(r["step"], r["eval/accuracy"]) for r in records if "eval/accuracy" in r]
        result[f"{method}_heldout_acc_start"] = evals[0][1]
        result[f"{method}_heldout_acc_final"] = evals[-1][1]
        result[f"{method}_sampled_tokens"] = records[-1]["sampled_tokens"]
        if method == "prime":
            accs = [r["prm/acc"] for r in records if r.get("prm/rows")]
            result["prime_implicit_prm_acc_last"] = accs[-1] if accs else float("nan")
        ax.plot(*zip(*evals), marker="o", label=method)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    ax.set_xlabel("policy steps")
    ax.set_ylabel("held-out accuracy (gym test, T=1)")
    ax.legend()
    path = out_dir / "rl_curves.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    result["plots"] = [str(path.name)]
    return result
