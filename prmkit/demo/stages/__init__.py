"""The later stages of `prmkit demo`, one module each: `demo_stage(out_dir, seed) -> dict` of flat
headline numbers plus, under "plots", the PNGs it drew. `STAGES` maps a stage's key to its report
title and "module:function"; a stage module is imported only when its stage runs (they load
models)."""

from __future__ import annotations

from prmkit.errors import InputError

# key -> (title, "module:function"); run in this order after the foundation stages
STAGES: dict[str, tuple[str, str]] = {
    "label": ("Step labels without humans (mc, omega, verify) against gold", "prmkit.demo.stages.label:demo_stage"),
    "reward_models": ("Reward models: shipped PRM (ProcessBench F1, Best-of-N), implicit PRM",
                      "prmkit.demo.stages.reward_models:demo_stage"),
    "serve": ("Reward server and TRL adapter", "prmkit.demo.stages.serve:demo_stage"),
    "search": ("PRM-guided search: accuracy vs policy tokens", "prmkit.demo.stages.search:demo_stage"),
    "rl": ("RL: outcome GRPO and PRIME (held-out accuracy)", "prmkit.demo.stages.rl:demo_stage"),
}


def selected_stages(spec: str) -> list[str]:
    """The stage keys `--stages` names: 'all', 'none' or a comma list; an unknown one is an `InputError`."""
    if spec == "all":
        return list(STAGES)
    if spec == "none":
        return []
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in keys if k not in STAGES]
    if unknown:
        raise InputError(f"unknown demo stage(s) {unknown}; expected 'all', 'none' or names from {list(STAGES)}",
                         field="stages")
    return keys
