"""Reward-hacking monitors for RL with process rewards, logged every step.

Per step: mean steps per solution, mean response length (tokens), fraction of empty steps,
fraction of repeated steps (a step whose text already appeared earlier in the same solution), mean
process reward. Across steps, `DriftMonitor` compares each reading with the first step's and warns
when it drifts (PURE reports sum-form hacking as runaway step counts / filler steps, PURE, arXiv 2504.15275, PURE, arXiv 2504.15275),
and when the process reward keeps rising while held-out accuracy falls (the divergence signal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


def step_stats(steps: Sequence[Sequence[str]], lengths: Sequence[int]) -> dict[str, float]:
    """Readings over one batch of solutions: steps[b] the step texts, lengths[b] response tokens."""
    n = max(1, len(steps))
    total_steps = sum(len(s) for s in steps)
    empty = sum(1 for s in steps for x in s if not x.strip())
    repeated = 0
    for s in steps:
        seen: set[str] = set()
        for x in s:
            key = x.strip()
            if key and key in seen:
                repeated += 1
            seen.add(key)
    return {
        "mon/steps_per_solution": total_steps / n,
        "mon/length": sum(lengths) / n,
        "mon/empty_step_frac": empty / max(1, total_steps),
        "mon/repeated_step_frac": repeated / max(1, total_steps),
        "mon/no_step_frac": sum(1 for s in steps if not s) / n,
    }


@dataclass
class DriftMonitor:
    """Warns when monitor readings drift from their first value, or process reward and held-out
    accuracy diverge. State is a plain dict (saved in checkpoints)."""

    rel_tolerance: float = 0.5
    """relative change of steps/length from the first step that triggers a warning"""
    abs_tolerance: float = 0.2
    """absolute level of empty/repeated-step fractions that triggers a warning"""
    divergence_tolerance: float = 0.05
    """process reward up and held-out accuracy down, each by more than this, triggers a warning"""
    window: int = 5
    """readings are compared as means over the first / the latest `window` steps (each step sees other prompts)"""
    first: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    first_eval: dict[str, float] = field(default_factory=dict)
    warned: list[str] = field(default_factory=list)

    def update(self, metrics: dict[str, float]) -> list[str]:
        """Readings of one step (keys `mon/...`, optionally `process_reward`, `eval/accuracy`);
        adds `mon/divergence` when both signals are known; returns the warnings raised now."""
        warnings = []
        for key in ("mon/steps_per_solution", "mon/length"):
            if key not in metrics:
                continue
            seen = self.history.setdefault(key, [])
            seen.append(metrics[key])
            if len(seen) <= self.window:
                self.first[key] = sum(seen) / len(seen)
            base = self.first[key]
            recent = seen[-self.window:]
            change = (sum(recent) / len(recent) - base) / max(abs(base), 1e-9)
            metrics[key.replace("mon/", "mon/drift_")] = change
            if abs(change) > self.rel_tolerance:
                warnings.append(f"{key} moved {change:+.0%} from its first value {base:.2f}")
        for key in ("mon/empty_step_frac", "mon/repeated_step_frac", "mon/no_step_frac"):
            if metrics.get(key, 0.0) > self.abs_tolerance:
                warnings.append(f"{key} = {metrics[key]:.2f} > {self.abs_tolerance}")
        if "process_reward" in metrics:
            self.first.setdefault("process_reward", metrics["process_reward"])
        if "eval/accuracy" in metrics:
            self.first_eval.setdefault("eval/accuracy", metrics["eval/accuracy"])
            if "process_reward" in self.first and "process_reward" in metrics:
                d_proc = metrics["process_reward"] - self.first["process_reward"]
                d_acc = metrics["eval/accuracy"] - self.first_eval["eval/accuracy"]
                metrics["mon/divergence"] = d_proc - d_acc
                if d_proc > self.divergence_tolerance and d_acc < -self.divergence_tolerance:
                    warnings.append(f"process reward rose {d_proc:+.3f} while held-out accuracy fell {d_acc:+.3f}")
        fresh = [w for w in warnings if w.split(" ")[0] not in {x.split(" ")[0] for x in self.warned}]
        self.warned += fresh
        return fresh

    def state_dict(self) -> dict:
        return {"first": dict(self.first), "first_eval": dict(self.first_eval), "warned": list(self.warned),
                "history": {k: list(v[-self.window:]) for k, v in self.history.items()},
                "counts": {k: len(v) for k, v in self.history.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.first, self.first_eval, self.warned = dict(state["first"]), dict(state["first_eval"]), list(state["warned"])
        # only the latest `window` readings matter once the first window is complete; pad the count back
        self.history = {k: [float("nan")] * (state.get("counts", {}).get(k, len(v)) - len(v)) + list(v)
                        for k, v in state.get("history", {}).items()}
