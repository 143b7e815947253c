"""Config dataclasses → CLI options, and run directories.

A stage's `<Stage>Config` dataclass is the single source of its options: each field's docstring
(the string literal under it) becomes its `--help` text, so the two can never disagree.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import textwrap
import typing
from pathlib import Path
from typing import Any, Callable

from prmkit.schema import atomic_write_text


def field_docs(cls: type) -> dict[str, str]:
    """Map each dataclass field to the docstring written under it in the class body (a field a
    dataclass inherits keeps its base class's docstring unless the subclass writes its own)."""
    docs: dict[str, str] = {}
    for base in reversed([c for c in cls.__mro__ if dataclasses.is_dataclass(c)]):
        docs.update(_own_field_docs(base))
    return docs


def _own_field_docs(cls: type) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for a, b in zip(body, body[1:]):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _option_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _option_type(args[0]) if len(args) == 1 else str
    if origin in (list, tuple):
        return list[typing.get_args(tp)[0]] if typing.get_args(tp) else list[str]
    return tp


def cli_fields(cls: type) -> list[dataclasses.Field]:
    """`cls`'s fields in the order its command lists them: the fields its body declares first, in its
    order (where the data and models live), then the inherited ones. A class with `CLI_AFTER =
    {"model": ("readout",)}` instead keeps the inherited order (a field it redeclares stays in its
    place) and lists each of its new fields right after the field named."""
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    after = getattr(cls, "CLI_AFTER", None)
    if after is None:
        own = [n for n in cls.__dict__.get("__annotations__", {}) if n in by_name]
        return [by_name[n] for n in own + [n for n in by_name if n not in own]]
    names = list(by_name)
    for anchor, placed in after.items():
        names = [n for n in names if n not in placed]
        at = names.index(anchor) + 1
        names[at:at] = list(placed)
    return [by_name[n] for n in names]


def _choices_note(cls: type, name: str) -> str:
    """' (one of: a, b, c)' for a field whose class names its registry in `CLI_CHOICES` ({field: "module:DICT"}),
    read when the command is built, so a newly registered method shows in --help without editing it."""
    spec = getattr(cls, "CLI_CHOICES", {}).get(name)
    if not spec:
        return ""
    module, attr = spec.split(":")
    return f" (one of: {', '.join(getattr(importlib.import_module(module), attr))})"


def command_from_config(cls: type, fn: Callable[[Any], Any]) -> Callable[..., Any]:
    """A function whose keyword parameters are `cls`'s fields (typer reads them as options) and
    which calls `fn(cls(**kwargs))`."""
    import typer

    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    params = []
    hidden = set(getattr(cls, "CLI_HIDDEN", ()))  # fields the command sets itself (they keep their defaults)
    for f in cli_fields(cls):
        if f.name in hidden:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else ...)  # type: ignore[misc]
        name = "--" + f.name.replace("_", "-")
        if _option_type(hints[f.name]) is bool:  # a switch both ways (Optional[bool]: None when not given)
            name = f"{name}/--no-{name[2:]}"
        # a list option (repeatable) shows its item type, so the help table keeps its width
        extra = {"metavar": "<str>"} if typing.get_origin(_option_type(hints[f.name])) is list else {}
        opt = typer.Option(default, name, help=docs.get(f.name, "") + _choices_note(cls, f.name), **extra)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt,
                                        annotation=_option_type(hints[f.name])))

    def command(**kwargs: Any) -> Any:
        return fn(cls(**kwargs))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = (cls.__doc__ or "").strip().split("\n")[0]
    return command


def save_config(run_dir: str | Path, cfg: Any, name: str = "config.json") -> Path:
    """Write the config a run used into its run directory."""
    path = Path(run_dir) / name
    atomic_write_text(path, json.dumps({"config": type(cfg).__name__, **dataclasses.asdict(cfg)}, indent=2) + "\n")
    return path
