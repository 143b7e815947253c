"""Run directories: the recorded config of a run, the one resume check, safe checkpoints and RNG states.

A resumable stage (`label`, `train prm|orm|implicit`, `rl`, `gym train-policy`) records its config
with `record_config` once its inputs and models have loaded, and, before it continues any work found
in its run directory, calls `check_resume`: the recorded options must equal the new ones (path
options compare by the file or directory they name, so `data.jsonl` and `/abs/dir/data.jsonl` are
the same; a file whose content changed is not), except the fields a stage declares as not changing
the result (device, threads, progress...). A run directory with no work in it is never locked by a
failed start.

Checkpoints hold tensors and plain data only (`save_checkpoint` / `load_checkpoint`, the latter with
`torch.load(weights_only=True)`): a file holding anything else — e.g. a pickled object that would run
code when loaded — is refused with an `InputError` naming it, and nothing in it runs. RNG states
(torch CPU and CUDA, Python's `random`, numpy's global generator) are stored as tensors and lists
(`rng_state` / `set_rng_state`), so a resumed run draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any, Iterable

from prmkit.errors import InputError
from prmkit.schema import atomic_write, atomic_write_text

INPUTS_KEY = "_inputs"  # fingerprints of the path-valued options, beside the options themselves


# --------------------------------------------------------------------------- recorded config

def _fingerprint(value: Any) -> dict | None:
    """{"path": real path, "sha256": content hash (files)} for a string option naming an existing
    file or directory, else None (hub ids, URLs, plain strings)."""
    if not isinstance(value, str) or not value or "\n" in value or len(value) > 4096:
        return None
    try:
        p = Path(value).expanduser()
        if not p.exists():
            return None
        out: dict = {"path": os.path.realpath(p)}
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out["sha256"] = h.hexdigest()
        return out
    except OSError:
        return None


def config_record(cfg: Any) -> dict:
    """The JSON record of a config: its class name, every field, and the fingerprints of path options."""
    rec = {"config": type(cfg).__name__, **dataclasses.asdict(cfg)}
    prints = {k: fp for k, v in rec.items() if k != "config" and (fp := _fingerprint(v)) is not None}
    if prints:
        rec[INPUTS_KEY] = prints
    return rec


def record_config(run_dir: str | Path, cfg: Any, name: str = "config.json") -> Path:
    """Write the config a run uses into its run directory (atomically)."""
    path = Path(run_dir) / name
    atomic_write_text(path, json.dumps(config_record(cfg), indent=2) + "\n")
    return path


def _same(key: str, old: dict, new: dict) -> bool:
    a, b = old.get(key), new.get(key)
    fa, fb = old.get(INPUTS_KEY, {}).get(key), new.get(INPUTS_KEY, {}).get(key)
    if fa and fb and "sha256" in fa and "sha256" in fb:
        return fa["sha256"] == fb["sha256"]          # the same content, wherever it lives
    if a == b:
        return True
    return bool(fa and fb and fa["path"] == fb["path"])  # two spellings of one path


def config_differences(old: dict, cfg: Any, ignore: Iterable[str] = ()) -> list[str]:
    """The fields whose recorded value (`old`, a `config_record`) differs from `cfg`'s, in field
    order; `ignore` names fields that may change. A field missing from an older record counts as
    its default value."""
    new = config_record(cfg)
    skip = set(ignore) | {"config", INPUTS_KEY}
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else
                         f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
                for f in dataclasses.fields(cfg)}
    old = {**{k: v for k, v in defaults.items() if k not in old}, **old}
    diff = [k for k in new if k not in skip and not _same(k, old, new)]
    if old.get("config") not in (None, new["config"]):
        diff.insert(0, "config")
    return diff


def check_resume(run_dir: str | Path, cfg: Any, *, has_work: bool, ignore: Iterable[str] = (),
                 name: str = "config.json") -> None:
    """Refuse to continue the work in `run_dir` with other options than the run that made it: an
    `InputError` naming the differing fields and their recorded and new values. Nothing is checked
    (and nothing is read) when `has_work` is False: a directory without work can be reused freely."""
    path = Path(run_dir) / name
    if not has_work or not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read the recorded config of this run ({e}); use a new --out",
                         file=str(path)) from None
    if not isinstance(old, dict):
        raise InputError("expected a JSON object (the recorded config); use a new --out", file=str(path))
    diff = config_differences(old, cfg, ignore)
    if diff:
        now = config_record(cfg)
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {now.get(k)!r}" for k in diff)
        raise InputError(f"{run_dir} holds a run made with different options ({shown}); rerun with the "
                         "recorded options to resume, or use a new --out", file=str(path), field=diff[0])


# --------------------------------------------------------------------------- checkpoints

def save_checkpoint(obj: dict, path: str | Path) -> None:
    """torch.save through `atomic_write` (temp file beside `path`, fsync, rename): a kill never leaves
    half a checkpoint."""
    import torch

    atomic_write(path, lambda fh: torch.save(obj, fh), binary=True)


def load_checkpoint(path: str | Path, map_location: Any = None) -> dict:
    """A checkpoint of tensors and plain data, read with `weights_only=True`; anything else (a
    pickled object, a truncated or foreign file) is an `InputError` naming the file, and runs nothing."""
    import torch

    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # the restricted unpickler's refusal, a torn zip, a non-torch file
        reason = " ".join(str(e).split())[:300]
        raise InputError(f"not a prmkit checkpoint of tensors and plain data ({type(e).__name__}: {reason}); "
                         "it was not loaded. Delete it to start this run over, or use a new --out",
                         file=str(path)) from None
    if not isinstance(state, dict):
        raise InputError(f"expected a checkpoint dict, got {type(state).__name__}; delete it or use a new --out",
                         file=str(path))
    return state


# --------------------------------------------------------------------------- RNG states

def rng_state() -> dict:
    """Every global RNG a run may draw from, as tensors and plain lists (loadable with weights_only)."""
    import torch

    version, internal, gauss = random.getstate()
    state: dict = {"torch": torch.get_rng_state(),
                   "python": {"version": version, "state": list(internal), "gauss": gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:  # numpy is optional
        return state
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = {"name": str(name), "keys": [int(k) for k in keys], "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)}
    return state


def set_rng_state(state: dict) -> None:
    """Restore the RNGs saved by `rng_state` (those present in `state`)."""
    import torch

    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "python" in state:
        py = state["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "numpy" in state:
        import numpy as np

        n = state["numpy"]
        np.random.set_state((n["name"], np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                             n["cached"]))
