"""Reward models behind one protocol (`base.RewardModel`), the pure step-score aggregation
(`aggregate.py`), and the loader: a saved model dir names its kind in `prmkit_rm.json`.

    from prmkit.rewards import load_reward_model, default_gym_prm
    rm = default_gym_prm()                       # the shipped gym PRM (mc-hard labels, aggregation "min")
    rm.score(["Q:7,+3\\n"], [["7+3=10", "A:10"]])  # -> [[p0, p1]], P(step is right)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from prmkit.data import SHIPPED_PRM_DIR  # noqa: F401  (public: the shipped gym PRM's dir)
from prmkit.errors import InputError
from prmkit.reading import check_model_name
from prmkit.rewards.public_prms import IMPLICIT_PRESETS
from prmkit.rewards.rm_config import RM_CONFIG, read_rm_config

# kind (as saved in prmkit_rm.json) -> "module:Class" with from_pretrained(path, **kw)
REWARD_MODELS: dict[str, str] = {
    "prm": "prmkit.rewards.discriminative:DiscriminativePRM",
    "orm": "prmkit.rewards.orm:ORM",
    "implicit": "prmkit.rewards.implicit:ImplicitPRM",
    "generative": "prmkit.rewards.generative:GenerativeVerifier",  # any causal LM prompted to verify
}


def load_reward_model(path_or_hub_id: str | Path, kind: str | None = None, **kw: Any):
    """A reward model from a saved dir or hub id: its kind, readout, aggregation and fitted threshold
    come from `prmkit_rm.json`; without that file, `kind` (default "prm") and e.g. `readout=` say how
    to read an external PRM (`readout="skywork"`, `"math-shepherd"`, ...; `readout="eurus-prm"` loads
    EurusPRM as an implicit PRM with the card's reference model and beta, `ref_model=` to point
    elsewhere). Keyword arguments override the saved settings (e.g. `aggregation=`)."""
    # a local-looking path that does not exist is refused here, never tried on the hub (spec strings such
    # as 'checker' or http:// go through prmkit.resolve, the one grammar of the commands)
    path = check_model_name(str(path_or_hub_id), "model", "a reward model")
    saved = read_rm_config(path) if Path(path).is_dir() else _hub_rm_config(path)
    # a public implicit PRM named by its readout (e.g. "eurus-prm") is an implicit reward model
    kind = kind or saved.get("kind") or ("implicit" if kw.get("readout") in IMPLICIT_PRESETS else "prm")
    if kind not in REWARD_MODELS:
        raise InputError(f"unknown reward-model kind {kind!r}; expected one of {sorted(REWARD_MODELS)}",
                         file=str(Path(path) / RM_CONFIG), field="kind")
    module_name, cls_name = REWARD_MODELS[kind].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    if kind in ("prm", "orm"):
        kw.setdefault("require_head", True)   # scoring with a random head is never what a caller wants
    return cls.from_pretrained(path, **kw)


def load_options(readout: str = "", trust_remote_code: bool = False, dtype: str = "") -> dict:
    """The `load_reward_model` keywords of the command-line options --readout / --trust-remote-code / --dtype."""
    return {**({"readout": readout} if readout else {}), **({"trust_remote_code": True} if trust_remote_code else {}),
            **({"dtype": dtype} if dtype and dtype != "float32" else {})}


def _hub_rm_config(hub_id: str) -> dict:
    """prmkit_rm.json of a hub repo if it has one (no network call when offline or absent)."""
    import json

    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(hub_id, "prmkit_rm.json")).read_text())
    except Exception:  # no file, no network, or not a repo: fall back to the caller's kind/readout
        return {}


def default_gym_prm(**kw: Any):
    """The shipped gym PRM (`prmkit/gym/prm_checkpoint/`, discriminative, trained on mc-hard labels; its head
    adds to the step log-likelihood under the frozen gym policy, so scoring loads both)."""
    if not (SHIPPED_PRM_DIR / "prmkit_rm.json").exists():
        raise InputError("the shipped gym PRM is missing; rebuild it with `prmkit train prm --out "
                         "prmkit/gym/prm_checkpoint`", file=str(SHIPPED_PRM_DIR))
    return load_reward_model(SHIPPED_PRM_DIR, **kw)
