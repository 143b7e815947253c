"""prmkit's packages import one way: a module may import its own layer or a lower one, never a higher.

Every `prmkit/**/*.py` is parsed with `ast`; every import counts — at module level, inside functions,
under `if TYPE_CHECKING`, relative or absolute. A module's layer is that of its first name under
`prmkit` (`prmkit.rewards.implicit` -> `rewards`), looked up in `LAYERS` below (low to high; names in
one tuple share a layer and may import each other, but no file may sit in an import cycle).
No prmkit module may import the benchmarks (`bench`). docs/architecture.md ("Layers") shows the
same order.

Lazily named components (the gym's grader registered in `prmkit.tasks.GRADERS` as the string
"prmkit.gym.task:GymGrader", resolved with importlib on first use; the reward-model kinds; the built-in
agent environments) are not imports and are not counted; `test_lazily_named_components_resolve`
checks those names.
"""

from __future__ import annotations

import ast
import importlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

PRMKIT = Path(__file__).resolve().parents[2] / "prmkit"

# Low -> high. A module imports only names of its own layer or of layers listed before it.
LAYERS: list[tuple[str, ...]] = [
    # base: the data model, I/O and formatting every stage shares
    ("prmkit", "errors", "reading", "schema", "config", "steps", "prompting", "progress", "report",
     "rundir", "data", "ray_pool"),
    ("lm",),            # LM utilities: device, dtype, padding, length-sorted batches, KV prefix cache
    ("tasks",),         # graders behind one protocol; the gym's registered by name
    ("formats",),       # converters between dataset layouts
    ("policy",),        # samplers
    ("rewards",),       # reward models
    ("gym",),           # the lab: task, checker RM, tiny policy, gym data for training
    ("resolve",),       # names -> components (reward-model specs, policies, problems, gym defaults)
    ("evaluate",),
    ("label",),
    ("train",),
    ("search",),
    ("rl",),
    ("agents",),
    ("serve",),
    ("integrations",),
    ("score", "score_ray", "grade", "convert", "sample"),  # top-level commands
    ("demo",),
    ("cli", "__main__"),
]


@dataclass(frozen=True)
class Import:
    module: str   # the importing module, e.g. "prmkit.rewards.implicit"
    target: str   # the module imported (longest existing prefix), e.g. "prmkit.train.losses"
    path: Path
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _existing(name: str, modules: set[str]) -> str:
    """The longest prefix of a dotted name that is a module of the tree (`a.b.func` -> `a.b`)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(root: Path) -> tuple[set[str], list[Import]]:
    """Every module under `root` (a package dir) and every import its files make, wherever it sits."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    found: list[Import] = []
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from pkg import sub` imports the submodule `pkg.sub` when there is one
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                           for alias in node.names]
            for target in targets:
                found.append(Import(mod, _existing(target, modules) if target.split(".")[0] == root.name
                                    else target, path, node.lineno))
    return modules, found


def layer_of(module: str, layers: list[tuple[str, ...]]) -> int:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    for i, names in enumerate(layers):
        if name in names:
            return i
    raise AssertionError(f"{module}: its name {name!r} is in no layer of LAYERS; add it where it belongs")


def layer_violations(root: Path, layers: list[tuple[str, ...]]) -> list[str]:
    _, found = imports_of(root)
    out = []
    for imp in found:
        if imp.target.split(".")[0] != root.name:
            continue
        src, dst = layer_of(imp.module, layers), layer_of(imp.target, layers)
        if dst > src:
            out.append(f"{imp.path.relative_to(root.parent)}:{imp.line}: {imp.module} (layer "
                       f"{'/'.join(layers[src])}) imports {imp.target} (higher layer {'/'.join(layers[dst])})")
    return out


def bench_imports(root: Path) -> list[str]:
    _, found = imports_of(root)
    return [f"{imp.path.relative_to(root.parent)}:{imp.line}: {imp.module} imports {imp.target}"
            for imp in found if imp.target.split(".")[0] == "bench"]


def file_cycles(root: Path) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative) of more than one module: import cycles."""
    modules, found = imports_of(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in found:
        if imp.target in modules and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                scc = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    scc.append(w)
                    if w == v:
                        break
                if len(scc) > 1:
                    cycles.append(sorted(scc))
    return cycles


def cycle_path(cycle: list[str], root: Path) -> list[str]:
    """One import cycle through the first module of an SCC, in import order, first module repeated."""
    _, found = imports_of(root)
    members = set(cycle)
    graph: dict[str, set[str]] = {m: set() for m in members}
    for imp in found:
        if imp.module in members and imp.target in members and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    start = cycle[0]
    back: dict[str, str] = {}
    queue = deque(sorted(graph[start]))
    for t in queue:
        back.setdefault(t, start)
    while queue:
        v = queue.popleft()
        if v == start:
            break
        for w in sorted(graph[v]):
            if w not in back:
                back[w] = v
                queue.append(w)
    path, v = [start], back[start]
    while v != start:
        path.append(v)
        v = back[v]
    return [start] + path[:0:-1] + [start]


# --- the real tree ---------------------------------------------------------------------------------

def test_every_prmkit_module_has_a_layer():
    modules, _ = imports_of(PRMKIT)
    for mod in modules:
        layer_of(mod, LAYERS)


def test_no_module_imports_a_higher_layer():
    bad = layer_violations(PRMKIT, LAYERS)
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_file_level_import_cycle():
    cycles = file_cycles(PRMKIT)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle_path(c, PRMKIT)) for c in cycles)


def test_no_library_module_imports_the_benchmarks():
    bad = bench_imports(PRMKIT)
    assert not bad, "\n".join(bad)


def test_lazily_named_components_resolve():
    from prmkit.agents.env import BUILTIN_ENVS
    from prmkit.rewards import REWARD_MODELS
    from prmkit.tasks import GRADERS

    for registry in (GRADERS, REWARD_MODELS, BUILTIN_ENVS):
        for name, target in registry.items():
            module, attr = target.split(":")
            assert callable(getattr(importlib.import_module(module), attr)), (name, target)


def test_the_shipped_policy_path_below_the_gym_is_the_gyms():
    from prmkit.data import SHIPPED_POLICY_DIR
    from prmkit.gym.train_policy import SHIPPED_POLICY_DIR as GYM_POLICY_DIR

    assert str(SHIPPED_POLICY_DIR) == str(GYM_POLICY_DIR) and (SHIPPED_POLICY_DIR / "config.json").is_file()


# --- the checker can fail ----------------------------------------------------------------------------

def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_checker_reports_a_violation_a_cycle_and_a_bench_import(tmp_path):
    pkg = tmp_path / "toy"
    _write(pkg, "__init__.py", "")
    _write(pkg, "low/__init__.py", "")
    # a lower layer reaching up, hidden inside a function and written relative
    _write(pkg, "low/a.py", "import os\n\n\ndef f():\n    from ..high.b import g\n    return g\n")
    _write(pkg, "high/__init__.py", "")
    _write(pkg, "high/b.py", "from toy.low import a\n\n\ndef g():\n    return a\n")
    # a cycle inside one layer: c -> d -> c (one of them through `from pkg import module`)
    _write(pkg, "high/c.py", "from toy.high import d\n")
    _write(pkg, "high/d.py", "def h():\n    import toy.high.c\n")
    _write(pkg, "high/e.py", "import bench.search\n")
    layers = [("toy", "low"), ("high",)]

    bad = layer_violations(pkg, layers)
    assert len(bad) == 1
    assert bad[0].startswith("toy/low/a.py:5: toy.low.a (layer toy/low) imports toy.high.b (higher layer high)")

    cycles = file_cycles(pkg)
    # a <-> b is a cycle too (a imports b inside a function, b imports a at the top)
    assert sorted(cycles) == [["toy.high.b", "toy.low.a"], ["toy.high.c", "toy.high.d"]]
    assert cycle_path(["toy.high.c", "toy.high.d"], pkg) == ["toy.high.c", "toy.high.d", "toy.high.c"]

    assert bench_imports(pkg) == ["toy/high/e.py:1: toy.high.e imports bench.search"]

    # with the layers swapped the same import is fine and the other direction is reported
    swapped = layer_violations(pkg, [("toy", "high"), ("low",)])
    assert swapped == ["toy/high/b.py:1: toy.high.b (layer toy/high) imports toy.low.a (higher layer low)"]


def test_no_benchmark_imports_another_benchmark():
    """Benchmarks are thin scripts over the library: what two of them share lives in prmkit, not in one of
    them (a bench script put on sys.path and imported by name, e.g. `from sampling import ...`)."""
    import ast

    bench = PRMKIT.parent / "bench"
    scripts = {p.stem for p in bench.glob("*.py")}
    bad = []
    for path in sorted(bench.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            bad += [f"bench/{path.name}:{node.lineno} imports {n}" for n in names
                    if n.split(".")[0] in scripts or n.split(".")[0] == "bench"]
    assert not bad, "\n".join(bad)
