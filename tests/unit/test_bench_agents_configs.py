"""bench/agents.py's RL runs are valid configs before the hour-long bench starts them: every arm, with
its own knobs over the shared budget (an arm naming its method once crashed the bench after its lr
selection had run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "agents.py"


def _bench(monkeypatch):
    monkeypatch.setenv("PRMKIT_QUIET", "1")   # the script sets it for itself; keep it out of other tests
    spec = importlib.util.spec_from_file_location("bench_agents", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_arm_and_seed_is_a_valid_config(monkeypatch):
    from prmkit.agents.rl import AgentRLConfig

    bench = _bench(monkeypatch)
    configs = bench.rl_configs(1e-4)
    assert len(configs) == len(bench.RL_ARMS) * len(bench.SEEDS) == 45
    built = [AgentRLConfig(**c) for c in configs]
    assert len({c.out for c in built}) == 45
    replay = [c for c in built if c.out.endswith(("spear_replay-s0", "spear_replay-s1", "spear_replay-s2"))]
    assert [(c.method, c.replay) for c in replay] == [("spear", 6)] * 3
    spear = [c for c in built if Path(c.out).name.startswith("spear-s")]
    assert [(c.method, c.replay) for c in spear] == [("spear", 0)] * 3
    assert {(c.steps, c.k, c.prompts_per_step, c.lr) for c in built} == {(12, 6, 6, 1e-4)}
