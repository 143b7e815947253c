"""Comparing agent RL runs: seed-mean held-out curves, steps to reach a baseline's final success, monitors."""

from __future__ import annotations

from pathlib import Path

from prmkit.rl.compare import steps_to_reach


def success_curve(runs: list[list[dict]], key: str = "success") -> list[tuple[int, float]]:
    """Seed-mean held-out `key` at each evaluation step every seed reached."""
    per_step: dict[int, list[float]] = {}
    for records in runs:
        for r in records:
            if "eval" in r:
                per_step.setdefault(int(r["step"]), []).append(r["eval"][key])
    return [(s, sum(v) / len(v)) for s, v in sorted(per_step.items()) if len(v) == len(runs)]


def mean_field(runs: list[list[dict]], key: str) -> float | None:
    """Mean of a per-step field over every step of every seed (None where no step has it)."""
    vals = [r[key] for records in runs for r in records if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


MONITORS = ("zero_variance_group_share", "zero_advantage_group_share", "redundant_share", "hallucinated_share",
            "turn_reward/spearman_info_gain", "turn_reward/spearman_useful")


def summarize_agent_runs(by_method: dict[str, list[list[dict]]], baseline: str = "grpo") -> dict:
    """Per method: curve, final success (seed mean), error-free final success, steps to reach the baseline's
    final success (the baseline's own: the first step its curve reaches its final value), their ratio, monitors."""
    curves = {m: success_curve(runs) for m, runs in by_method.items()}
    final = {m: c[-1][1] for m, c in curves.items() if c}
    target = final[baseline]
    steps = {m: steps_to_reach(c, target) for m, c in curves.items()}
    base_steps = steps[baseline]
    return {
        "curves": {m: [list(p) for p in c] for m, c in curves.items()},
        "final_success": final,
        "final_error_free_success": {m: success_curve(r, "error_free_success")[-1][1] for m, r in by_method.items()},
        "steps_to_grpo_final": steps,
        "steps_ratio_to_grpo": {m: (s / base_steps if s is not None and base_steps else None) for m, s in steps.items()},
        **{key.replace("turn_reward/", "turn_reward_"): {m: mean_field(r, key) for m, r in by_method.items()}
           for key in MONITORS},
    }


def plot_success(curves: dict[str, list[list[float]]], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for m, c in curves.items():
        ax.plot([p[0] for p in c], [p[1] for p in c], marker="o", lw=2.5 if m == "grpo" else 1.2, label=m)
    ax.set_xlabel("RL step")
    ax.set_ylabel("held-out success (seed mean)")
    ax.set_title(title)
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
