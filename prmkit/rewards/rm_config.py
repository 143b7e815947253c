"""A saved reward model's own settings (`prmkit_rm.json`) and how it names the other models it needs.

A saved reward-model dir is a Hugging Face model dir plus `prmkit_rm.json` (its kind, readout,
aggregation, fitted threshold, and the names of the models it loads beside it: the likelihood LM of
a discriminative PRM, the reference of an implicit PRM). Names are stored so the dir works from any
directory and after a move (`stored_path` / `load_path`); the marker `gym-policy` stands for the
shipped gym policy wherever the package is installed (`resolve_ref`).
"""

from __future__ import annotations

import json
from pathlib import Path

from prmkit.data import SHIPPED_POLICY_DIR
from prmkit.errors import InputError
from prmkit.schema import atomic_write_text

RM_CONFIG = "prmkit_rm.json"
GYM_POLICY = "gym-policy"   # saved in place of the shipped policy's absolute path


def read_rm_config(path: str | Path) -> dict:
    """The settings saved in `path/prmkit_rm.json`, {} when the dir has none; an InputError (file, line)
    when the file is not JSON."""
    f = Path(path) / RM_CONFIG
    if not f.exists():
        return {}
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"expected JSON: {e.msg}", file=str(f), line=e.lineno) from None


def write_rm_config(out: str | Path, cfg: dict) -> None:
    atomic_write_text(Path(out) / RM_CONFIG, json.dumps(cfg, indent=2) + "\n")


def stored_path(name: str, model_dir: str | Path) -> str:
    """How a saved model dir names another model (the likelihood LM, an implicit PRM's reference) so the
    dir works from any directory and after being moved: a local path inside the dir relative to it,
    another local path absolute; a hub id or a marker (`gym-policy`) as given."""
    p = Path(name).expanduser() if name else None
    if p is None or not p.exists():
        return name
    p, home = p.resolve(), Path(model_dir).resolve()
    return str(p.relative_to(home)) if p.is_relative_to(home) else str(p)


def load_path(name: str, model_dir: str | Path) -> str:
    """The inverse of `stored_path`: a relative name is looked up in the model dir (absolute result);
    dirs saved before names were stored this way may hold a name relative to where they were trained,
    which is tried next, then the name is taken as a hub id or marker."""
    if not name or Path(name).is_absolute():
        return name
    beside = Path(model_dir) / name
    if beside.exists():
        return str(beside.resolve())
    return str(Path(name).resolve()) if Path(name).exists() else name


def resolve_ref(ref: str) -> str:
    """A stored model name as a loadable path or hub id; the marker `gym-policy` means the shipped gym policy."""
    if ref == GYM_POLICY:
        return str(SHIPPED_POLICY_DIR)
    return ref
